#!/usr/bin/env python3
"""Consistent hashing, by hand: a ring of 2**64 positions. Node `name` puts `vnodes`
tokens on it, token v at the first 8 bytes of SHA-256("name#v"); a key sits at the first 8
bytes of SHA-256(key). The key belongs to the node of the first token at or after it
(wrapping past the top); with R replicas, to the next distinct nodes clockwise too.

    python3 examples/placement/ring.py --nodes kv1,kv2,kv3 key-7
    python3 examples/placement/ring.py --nodes kv1,kv2,kv3 --vnodes 100 --replicas 2 key-7

Compare with the proxy: curl -s "http://localhost:5003/explain?key=key-7"."""
import argparse
import bisect
import hashlib


def point(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def tokens(names, vnodes):
    return sorted((point(f"{name}#{v}"), i, v) for i, name in enumerate(names) for v in range(vnodes))


def preference(key, names, count, vnodes=100):
    ring = tokens(names, vnodes)
    start = bisect.bisect_left(ring, (point(key), -1, -1)) % len(ring)
    picked = []
    for k in range(len(ring)):
        node = ring[(start + k) % len(ring)][1]
        if node not in picked:
            picked.append(node)
            if len(picked) == min(count, len(names)):
                break
    return [names[i] for i in picked]


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--nodes", required=True, help="the nodes' names, comma-separated")
    cli.add_argument("--vnodes", type=int, default=100)
    cli.add_argument("--replicas", type=int, default=1)
    cli.add_argument("key")
    args = cli.parse_args()
    names = args.nodes.split(",")
    print(f"position on the ring: {point(args.key)} ({point(args.key) / 2**64:.4f} of the way round)")
    print("nodes:", ", ".join(preference(args.key, names, args.replicas, args.vnodes)))
