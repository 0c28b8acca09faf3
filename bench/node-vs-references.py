#!/usr/bin/env python3
"""The storage node against the references its issue names, measured in one run:

1. GET throughput: our node answering `GET /get?key=...` for 1,000 stored keys, against
   nginx answering a fixed JSON body of the same size from memory (`return 200`), both
   driven by wrk with the same connections and duration. Goal: ratio >= 1.0 (with default logging). Measured
   twice: without per-request logs (node RUST_LOG=warn, nginx access_log off), and with
   them (the node's default one line per request, nginx's access log; both to /dev/null).
2. Memory: 1,000,000 keys of 16 bytes with 100-byte values, loaded into our node and into
   redis-server; resident memory (RSS) of each after loading. Goal: ratio <= 0.75.

Run from the project's root: `python3 bench/node-vs-references.py` (needs wrk, nginx,
redis-server: `apt-get install wrk nginx redis-server`); `... node-vs-references.py memory`
runs figure 2 alone. Figures vary from machine to
machine; the ratios, measured side by side, are what to compare. Prints the figures last."""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvbench import *

VALUE = "v" * 98  # a 100-byte JSON string value: "vvv...v"


def memory(storage, env, body):
    """2. Memory for 1,000,000 keys of 16 bytes with 100-byte values, against redis:
    (the line to print, node RSS / redis RSS)."""
    mport = free_port()
    node = spawn([storage, "-n", "mem", "-p", str(mport), "--host", "127.0.0.1"], env=env)
    wait_port(mport)
    empty_node = rss_kib(node.pid)
    reqs = []
    for i in range(1_000_000):
        key = b"key-%012d" % i  # 16 bytes
        reqs.append(b"POST /put?key=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (key, len(body), body))
    loaded = pipelined(mport, reqs)
    reqs = None
    time.sleep(0.5)
    node_kib = rss_kib(node.pid)
    rport = free_port()
    redis = spawn(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
    wait_port(rport)
    empty_redis = rss_kib(redis.pid)
    cmds = bytearray()
    value = VALUE.encode()
    for i in range(1_000_000):
        key = b"key-%012d" % i
        cmds += b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$%d\r\n%s\r\n" % (key, len(value) + 2, b'"' + value + b'"')
    subprocess.run(["redis-cli", "-p", str(rport), "--pipe"], input=bytes(cmds), stdout=subprocess.DEVNULL, check=True)
    time.sleep(0.5)
    redis_kib = rss_kib(redis.pid)

    for p in (node, redis):
        stop(p)
    per_pair = lambda kib, empty: (kib - empty) * 1024 / 1_000_000
    line = (f"1,000,000 keys (16 B keys, 100 B values): node RSS {node_kib / 1024:,.0f} MiB (empty {empty_node / 1024:.0f}; "
            f"{per_pair(node_kib, empty_node):.0f} B a pair), redis-server RSS {redis_kib / 1024:,.0f} MiB "
            f"(empty {empty_redis / 1024:.0f}; {per_pair(redis_kib, empty_redis):.0f} B a pair); {loaded:,} puts answered")
    return line, node_kib / redis_kib


def main():
    need("wrk", "nginx", "redis-server")
    storage, _ = binaries()
    env = dict(os.environ, RUST_LOG="warn")
    body = json.dumps({"value": VALUE}).encode()
    if sys.argv[1:] == ["memory"]:
        line, ratio = memory(storage, env, body)
        print(line)
        print(f"ratios: memory node/redis = {ratio:.2f} (goal <= 0.75)")
        return

    # 1. GET throughput against nginx, without and with per-request logs.
    answer = json.dumps({"value": VALUE, "key": "key-999", "node": "kv1"})
    lua = get_lua(1000)

    def node_and_nginx(log_level, access_log):
        port = free_port()
        node = spawn([storage, "-n", "kv1", "-p", str(port), "--host", "127.0.0.1"],
                     env=dict(env, RUST_LOG=log_level))
        wait_port(port)
        pipelined(port, [b"POST /put?key=key-%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                         % (i, len(body), body) for i in range(1000)])
        nport = free_port()
        conf = os.path.join(TMP, f"nginx-{nport}.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 2; daemon off; pid {TMP}/nginx-{nport}.pid; error_log {TMP}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log {access_log}; server {{ listen 127.0.0.1:{nport};
  location /get {{ default_type application/json; return 200 '{answer}'; }} }} }}
""")
        ngx = spawn(["nginx", "-c", conf])
        wait_port(nport)
        wrk(port, lua, 2); wrk(nport, lua, 2)  # warm up both
        ours, theirs = [], []
        for _ in range(3):  # interleaved, so a noisy moment hits both
            ours.append(wrk(port, lua)[0]); theirs.append(wrk(nport, lua)[0])
        for p in (node, ngx):
            os.killpg(p.pid, signal.SIGKILL)
        return max(ours), max(theirs)

    node_rps, nginx_rps = node_and_nginx("warn", "off")
    node_log_rps, nginx_log_rps = node_and_nginx("info", "/dev/null")

    mem_line, mem_ratio = memory(storage, env, body)
    print(f"GET /get, wrk -t1 -c64 5 s, best of 3: node {node_rps:,.0f} req/s, nginx fixed body {nginx_rps:,.0f} req/s")
    print(f"  with a log line per request: node {node_log_rps:,.0f} req/s, nginx with its access log {nginx_log_rps:,.0f} req/s")
    print(mem_line)
    print(f"ratios: GET node/nginx = {node_rps / nginx_rps:.2f} (goal >= 1.0 with logs), with logs {node_log_rps / nginx_log_rps:.2f}; "
          f"memory node/redis = {mem_ratio:.2f} (goal <= 0.75)")


try:
    main()
finally:
    cleanup()
