#!/usr/bin/env python3
"""Rendezvous (highest random weight) hashing, by hand: every node scores the key with the
first 8 bytes of SHA-256("name:key"); the highest score holds it (ties: the earlier node),
with R replicas the R highest.

    python3 examples/placement/rendezvous.py --nodes kv1,kv2,kv3 key-7

Compare with the proxy: curl -s "http://localhost:5003/explain?key=key-7"."""
import argparse
import hashlib


def score(name, key):
    return int.from_bytes(hashlib.sha256(f"{name}:{key}".encode()).digest()[:8], "big")


def preference(key, names, count):
    ranked = sorted(range(len(names)), key=lambda i: (-score(names[i], key), i))
    return [names[i] for i in ranked[:count]]


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--nodes", required=True, help="the nodes' names, comma-separated")
    cli.add_argument("--replicas", type=int, default=1)
    cli.add_argument("key")
    args = cli.parse_args()
    names = args.nodes.split(",")
    for name in names:
        print(f"{name}'s score: {score(name, args.key)}")
    print("nodes:", ", ".join(preference(args.key, names, args.replicas)))
