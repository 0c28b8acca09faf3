"""What the benchmarks share: free ports, processes started and always stopped, wrk, RSS,
CPU seconds, and a pipelined loader for bulk writes. Standard library only."""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TMP = tempfile.mkdtemp(prefix="kv-bench-")
procs = []


def need(*tools):
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx redis-server")


def binaries():
    """cargo build --release; the paths of storage and proxy. KV_BIN_DIR names a folder
    holding others (an older build, to measure before and after)."""
    if os.environ.get("KV_BIN_DIR"):
        return [os.path.join(os.environ["KV_BIN_DIR"], b) for b in ("storage", "proxy")]
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return [os.path.join(target, "release", b) for b in ("storage", "proxy")]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def spawn(argv, **kw):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def cleanup():
    for p in procs:
        stop(p)
    shutil.rmtree(TMP, ignore_errors=True)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pids):
    """User + system CPU seconds these processes used so far."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def get_lua(keys=1000):
    path = os.path.join(TMP, f"get-{keys}.lua")
    with open(path, "w") as f:
        f.write(f'local i = 0\nrequest = function()\n  i = (i + 1) % {keys}\n'
                f'  return wrk.format("GET", "/get?key=key-" .. i)\nend\n')
    return path


def put_lua(keys=1000, value='"v"'):
    """A wrk script that POSTs /put for keys put-0 .. put-(keys-1) in turn."""
    path = os.path.join(TMP, f"put-{keys}.lua")
    body = '{"value":' + value + '}'
    with open(path, "w") as f:
        f.write(f'local i = 0\nrequest = function()\n  i = (i + 1) % {keys}\n'
                f'  return wrk.format("POST", "/put?key=put-" .. i, nil, \'{body}\')\nend\n')
    return path


def wrk_run(port, lua, seconds=5, conns=64):
    """wrk's figures: {"rps", "p50", "p99" (microseconds), "errors" (non-2xx answers,
    timeouts and socket errors)}."""
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua,
                          f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True, check=True).stdout
    unit = {"us": 1, "ms": 1e3, "s": 1e6}
    lat = {q: float(m.group(1)) * unit[m.group(2)]
           for q, m in ((q, re.search(rf"{q}%\s+([\d.]+)(us|ms|s)", out)) for q in ("50", "99"))}
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(n) for n in m.groups()) if m else 0
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": lat["50"], "p99": lat["99"], "errors": errors}


def wrk(port, lua, seconds=5, conns=64):
    """(requests per second, p50 latency in microseconds)."""
    r = wrk_run(port, lua, seconds, conns)
    return r["rps"], r["p50"]


def pipelined(port, requests, batch=2000):
    """Sends raw HTTP/1.1 requests pipelined on one connection; returns how many answers came."""
    s = socket.create_connection(("127.0.0.1", port))
    seen = 0
    for i in range(0, len(requests), batch):
        chunk = requests[i:i + batch]
        s.sendall(b"".join(chunk))
        got, buf = 0, b""
        while got < len(chunk):
            data = s.recv(1 << 20)
            if not data:
                sys.exit("the server closed the connection during the load")
            buf += data
            got = buf.count(b"HTTP/1.1 ")
        seen += got
    s.close()
    return seen


def puts(port, keys, value=b'"v"'):
    body = b'{"value":' + value + b'}'
    return pipelined(port, [b"POST /put?key=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                            % (k.encode(), len(body), body) for k in keys])


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def percentile(xs, q):
    """The q-th percentile (0..100) of xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs))) - 1))]
