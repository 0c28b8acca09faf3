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
5. Big nodes watched: 30 nodes x 20,000 keys (600,000 put through the proxy); 30 viewers
   poll /state.json once a second. p95 of those polls, idle and while wrk puts through
   the proxy (goal <= 100 ms: a put marks the snapshot stale, so a poll then waits for a
   fresh sweep); put throughput and p99 with the viewers against without (goal: puts
   unaffected, ratio >= 0.9, no errors).

Run from the project's root: `python3 bench/proxy-vs-references.py` (needs wrk and nginx);
`python3 bench/proxy-vs-references.py big` runs figure 5 alone. Prints the figures, then
the ratios, last."""
import json, os, socket, statistics, threading, time, http.client, sys
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


def viewer(port, stop_ev, offset, times=None, student=0):
    """Polls /state.json once a second, as the page does, until stop_ev; appends each
    poll's (start, seconds) to `times` when given. Each viewer is a student of its own
    (`X-Forwarded-For: 10.1.0.N`, which the proxy trusts from loopback, as it does from
    ngrok): the puts come from elsewhere (the teacher's loop), as in class."""
    time.sleep(offset)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    me = {"X-Forwarded-For": f"10.1.{student // 250}.{student % 250 + 1}"}
    while not stop_ev.is_set():
        t0 = time.time()
        try:
            c.request("GET", "/state.json", headers=me); c.getresponse().read()
            if times is not None:
                times.append((t0, time.time() - t0))
        except Exception:
            if times is not None:
                times.append((t0, 10.0))  # an error counts as the worst poll
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stop_ev.wait(max(0.0, 1.0 - (time.time() - t0)))


def start_viewers(port, n=30, times=None):
    stop_ev = threading.Event()
    threads = [threading.Thread(target=viewer, args=(port, stop_ev, i / n, times, i), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()

    def stop_all():
        stop_ev.set()
        for t in threads:
            t.join(timeout=12)
    return stop_all


def big_nodes(storage, proxy, out):
    """5. 30 nodes x 20,000 keys, 30 viewers: /state.json p95, and puts with and without them."""
    nodes = start_nodes(storage, 30)
    ports = [p for _, p in nodes]
    pp, pport = start_proxy(proxy, config("sharding", ports))
    keys = [f"key-{i}" for i in range(600_000)]
    loaders = [threading.Thread(target=puts, args=(pport, keys[i::4])) for i in range(4)]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    c = http.client.HTTPConnection("127.0.0.1", pport, timeout=30)
    c.request("GET", "/state.json"); size = len(c.getresponse().read())
    held = 0
    for port in ports:
        n = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n.request("GET", "/dump?limit=0"); held += json.loads(n.getresponse().read())["count"]
    lua = put_lua(1000, '"' + "v" * 98 + '"')
    wrk_run(pport, lua, 2)  # warm up
    alone, watched, idle_polls, busy_polls = [], [], [], []

    def window(polls, t0, t1):
        return [d for start, d in polls if t0 <= start < t1]

    for _ in range(3):  # alternated: puts alone, then with viewers (idle, then puts)
        alone.append(wrk_run(pport, lua, 4))
        polls = []
        stop_viewers = start_viewers(pport, 30, polls)
        time.sleep(3)  # the first views after the puts wait for a fresh sweep
        t0 = time.time()
        time.sleep(4)
        t1 = time.time()
        watched.append(wrk_run(pport, lua, 4))
        t2 = time.time()
        stop_viewers()
        idle_polls += window(polls, t0, t1)
        busy_polls += window(polls, t1, t2)
    for p, _ in nodes:
        stop(p)
    stop(pp)
    p95_idle, p95_busy = percentile(idle_polls, 95) * 1000, percentile(busy_polls, 95) * 1000
    put_ratio = median([w["rps"] for w in watched]) / median([a["rps"] for a in alone])
    p99 = lambda runs: median([r["p99"] for r in runs]) / 1000
    errors = sum(r["errors"] for r in alone + watched)
    p50_idle, p50_busy = percentile(idle_polls, 50) * 1000, percentile(busy_polls, 50) * 1000
    out.append(f"30 nodes x 20,000 keys ({held:,} held, /state.json {size / 1024:,.0f} KiB): /state.json p50/p95 "
               f"{p50_idle:.1f}/{p95_idle:.1f} ms idle ({len(idle_polls)} polls), "
               f"{p50_busy:.0f}/{p95_busy:.0f} ms during puts ({len(busy_polls)} polls); "
               f"puts {median([a['rps'] for a in alone]):,.0f} req/s (p99 {p99(alone):.1f} ms) alone, "
               f"{median([w['rps'] for w in watched]):,.0f} req/s (p99 {p99(watched):.1f} ms) with 30 viewers; "
               f"{errors} put errors")
    return (f"big nodes: /state.json p95 {p95_idle:.1f} ms idle, {p95_busy:.0f} ms during puts (goal <= 100), "
            f"puts watched/alone {put_ratio:.2f} (goal >= 0.9), put p99 watched/alone "
            f"{p99(watched) / p99(alone):.2f}, {errors} put errors (goal 0)")


def main():
    need("wrk", "nginx")
    storage, proxy = binaries()
    lua = get_lua(1000)
    out = []
    if sys.argv[1:] == ["big"]:
        ratio_line = big_nodes(storage, proxy, out)
        for line in out:
            print(line)
        print("ratios: " + ratio_line)
        return

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
    alone, watched, cores = [], [], []
    for _ in range(3):
        alone.append(wrk(pport, lua, 4)[0])
        stop_viewers = start_viewers(pport, 30)
        time.sleep(1.5)
        c0, t0 = cpu_s(pids), time.time()
        time.sleep(3)
        cores.append((cpu_s(pids) - c0) / (time.time() - t0))
        watched.append(wrk(pport, lua, 4)[0])
        stop_viewers()
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

    big = big_nodes(storage, proxy, out)

    for line in out:
        print(line)
    print(f"ratios: proxy/nginx {ratio:.2f} (goal >= 1.0); added latency {added:.0f} us (goal <= 25; nginx adds {nginx_added:.0f}); "
          f"watched/alone {median(watched) / median(alone):.2f} (goal >= 0.9); viewers {median(cores):.2f} cores "
          f"(goal <= 0.15); black-hole p50 {hole_p50:.2f} ms (goal <= 5); {big}")


try:
    main()
finally:
    cleanup()
