#!/usr/bin/env python3
"""Sharding's placement, by hand: the node is SHA-256 of the key, read as one big-endian
number, mod the number of nodes; with R replicas, the next R-1 indexes hold the copies.

    python3 examples/placement/modulo.py --nodes kv1,kv2,kv3 key-7
    python3 examples/placement/modulo.py --nodes kv1,kv2,kv3 --replicas 2 key-7

Compare with the proxy: curl -s "http://localhost:5003/explain?key=key-7"."""
import argparse
import hashlib


def preference(key, names, count):
    n = len(names)
    first = int(hashlib.sha256(key.encode()).hexdigest(), 16) % n
    return [names[(first + k) % n] for k in range(min(count, n))]


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--nodes", required=True, help="the nodes' names in the config's order, comma-separated")
    cli.add_argument("--replicas", type=int, default=1)
    cli.add_argument("key")
    args = cli.parse_args()
    names = args.nodes.split(",")
    number = int(hashlib.sha256(args.key.encode()).hexdigest(), 16)
    print(f"SHA-256 as a number: {number}")
    print(f"mod {len(names)} = {number % len(names)}")
    print("nodes:", ", ".join(preference(args.key, names, args.replicas)))
