#!/usr/bin/env python3
"""The proxy against the references its issue names, measured side by side in one run,
alternated, medians of three rounds:

1. GET throughput: our proxy (sharding, default logging) over three nodes, against nginx
   `upstream { hash $arg_key consistent; keepalive 64; }` over the same three nodes (its
   access log on, to /dev/null, as ours goes to /dev/null), wrk -t1 -c64. Goal >= 1.0.
2. Latency the proxy adds at one connection: p50 through the proxy minus p50 straight to
   the node, wrk -t1 -c1. Goal <= 25 us. Beside it, what nginx adds over the same node
   (a proxy's floor on this machine: one more loopback round trip).
3. A class of 30 watching: 30 nodes x 1,000 keys; 30 viewers poll /state.json once a
   second. CPU the viewers alone cost the proxy and the nodes (goal <= 0.15 cores), and
   GET throughput with them against without (goal >= 0.9).
4. A closed laptop: replication whose first node is a black hole (timeout 1 s); p50 of
   the reads after the first (goal <= 5 ms).

Run from the project's root: `python3 bench/proxy-vs-references.py` (needs wrk and nginx).
Prints the figures, then the ratios, last."""
import os, socket, statistics, threading, time, http.client, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvbench import *


def start_nodes(storage, n, keys=1000):
    nodes = []
    for i in range(n):
        port = free_port()
        p = spawn([storage, "-n", f"kv{i}", "-p", str(port), "--host", "127.0.0.1"])
        nodes.append((p, port))
    for _, port in nodes:
        wait_port(port)
    return nodes


def config(mode, ports, extra=""):
    path = os.path.join(TMP, f"{mode}-{len(os.listdir(TMP))}.yml")
    with open(path, "w") as f:
        f.write(f"mode: {mode}\nnodes:\n")
        for i, p in enumerate(ports):
            f.write(f"  - name: kv{i}\n    url: http://127.0.0.1:{p}\n")
        f.write(extra)
    return path


def start_proxy(proxy, cfg):
    port = free_port()
    p = spawn([proxy, "-c", cfg, "-p", str(port), "--host", "127.0.0.1"])
    wait_port(port)
    return p, port


def nginx_hash(ports):
    port = free_port()
    conf = os.path.join(TMP, f"nginx-{port}.conf")
    servers = "".join(f"server 127.0.0.1:{p};" for p in ports)
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {TMP}/nginx-{port}.pid; error_log {TMP}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log /dev/null;
  upstream nodes {{ hash $arg_key consistent; {servers} keepalive 64; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://nodes; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    p = spawn(["nginx", "-c", conf])
    wait_port(port)
    return p, port


def main():
    need("wrk", "nginx")
    storage, proxy = binaries()
    lua = get_lua(1000)
    out = []

    # 1 and 2: proxy and nginx over the same three nodes.
    nodes = start_nodes(storage, 3)
    ports = [p for _, p in nodes]
    pp, pport = start_proxy(proxy, config("sharding", ports))
    puts(pport, [f"key-{i}" for i in range(1000)])
    ng, nport = nginx_hash(ports)
    wrk(pport, lua, 2); wrk(nport, lua, 2)
    ours, theirs = [], []
    for _ in range(3):
        ours.append(wrk(pport, lua)[0]); theirs.append(wrk(nport, lua)[0])
    direct_lat, proxy_lat, nginx_lat = [], [], []
    # One node holds every key a one-node proxy places: compare the same node three ways.
    _, oport = start_proxy(proxy, config("sharding", ports[:1]))
    _, n1port = nginx_hash(ports[:1])
    puts(ports[0], [f"key-{i}" for i in range(1000)])
    for _ in range(3):
        direct_lat.append(wrk(ports[0], lua, 3, conns=1)[1])
        proxy_lat.append(wrk(oport, lua, 3, conns=1)[1])
        nginx_lat.append(wrk(n1port, lua, 3, conns=1)[1])
    for p, _ in nodes:
        stop(p)
    stop(pp); stop(ng)
    ratio = median(ours) / median(theirs)
    added = median(proxy_lat) - median(direct_lat)
    nginx_added = median(nginx_lat) - median(direct_lat)
    out.append(f"GET, wrk -t1 -c64: proxy {median(ours):,.0f} req/s, nginx hash upstream {median(theirs):,.0f} req/s")
    out.append(f"one connection: p50 direct {median(direct_lat):.0f} us, through the proxy {median(proxy_lat):.0f} us, "
               f"through nginx {median(nginx_lat):.0f} us")

    # 3. thirty viewers.
    nodes = start_nodes(storage, 30)
    ports = [p for _, p in nodes]
    pp, pport = start_proxy(proxy, config("sharding", ports))
    puts(pport, [f"key-{i}" for i in range(30_000)])
    pids = [pp.pid] + [p.pid for p, _ in nodes]
    stop_ev = threading.Event()

    def viewer(offset):
        time.sleep(offset)
        c = http.client.HTTPConnection("127.0.0.1", pport, timeout=10)
        while not stop_ev.is_set():
            t0 = time.time()
            try:
                c.request("GET", "/state.json"); c.getresponse().read()
            except Exception:
                c = http.client.HTTPConnection("127.0.0.1", pport, timeout=10)
            stop_ev.wait(max(0.0, 1.0 - (time.time() - t0)))

    alone, watched, cores = [], [], []
    for _ in range(3):
        alone.append(wrk(pport, lua, 4)[0])
        stop_ev.clear()
        threads = [threading.Thread(target=viewer, args=(i / 30,), daemon=True) for i in range(30)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        c0, t0 = cpu_s(pids), time.time()
        time.sleep(3)
        cores.append((cpu_s(pids) - c0) / (time.time() - t0))
        watched.append(wrk(pport, lua, 4)[0])
        stop_ev.set()
        for t in threads:
            t.join(timeout=12)
    for p, _ in nodes:
        stop(p)
    stop(pp)
    out.append(f"30 nodes x 1,000 keys: GET {median(alone):,.0f} req/s alone, {median(watched):,.0f} req/s "
               f"with 30 viewers; the viewers alone cost {median(cores):.2f} cores")

    # 4. a black hole first in replication.
    hole = socket.socket(); hole.bind(("127.0.0.1", 0)); hole.listen(512)
    nodes = start_nodes(storage, 2)
    cfg = os.path.join(TMP, "hole.yml")
    with open(cfg, "w") as f:
        f.write(f"mode: replication\ntimeout_ms: 1000\nnodes:\n  - name: hole\n    url: http://127.0.0.1:{hole.getsockname()[1]}\n")
        for i, (_, p) in enumerate(nodes):
            f.write(f"  - name: r{i}\n    url: http://127.0.0.1:{p}\n")
    pp, pport = start_proxy(proxy, cfg)
    c = http.client.HTTPConnection("127.0.0.1", pport, timeout=10)
    c.request("POST", "/put?key=k", b'{"value": 1}'); c.getresponse().read()
    times = []
    for _ in range(51):
        t0 = time.time()
        c.request("GET", "/get?key=k"); c.getresponse().read()
        times.append((time.time() - t0) * 1000)
    hole_p50 = statistics.median(times[1:])
    out.append(f"black hole first in replication: first read {times[0]:.0f} ms, then p50 {hole_p50:.2f} ms")

    for line in out:
        print(line)
    print(f"ratios: proxy/nginx {ratio:.2f} (goal >= 1.0); added latency {added:.0f} us (goal <= 25; nginx adds {nginx_added:.0f}); "
          f"watched/alone {median(watched) / median(alone):.2f} (goal >= 0.9); viewers {median(cores):.2f} cores "
          f"(goal <= 0.15); black-hole p50 {hole_p50:.2f} ms (goal <= 5)")


try:
    main()
finally:
    cleanup()
