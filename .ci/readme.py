#!/usr/bin/env python3
"""Runs the README's commands exactly as written, so the README cannot rot.

Every ```sh block in README.md is preceded by a directive comment saying how to run it:
  <!-- ci: run -->              run it; it must exit 0
  <!-- ci: bg PORT[,PORT] -->   start it in the background; each port must listen in time
  <!-- ci: try PORT -->          start it, check http://localhost:PORT/state answers 200, stop it
                                (a demo that holds ports the README's next scenario needs)
  <!-- ci: skip: why -->        not run here (why says what covers it instead)
A block without a directive is an error: a new command must say how it is checked.
The blocks run in order, in a copy of the project (so `sed -i` on a config changes the copy),
sharing this checkout's target/ folder; every background process is stopped at the end."""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks(text):
    directive = None
    lines = iter(text.splitlines())
    for line in lines:
        m = re.match(r"\s*<!-- ci: (.*?) -->\s*$", line)
        if m:
            directive = m.group(1)
            continue
        if line.strip() == "```sh":
            body = []
            for inner in lines:
                if inner.strip() == "```":
                    break
                body.append(inner)
            yield directive, "\n".join(body)
            directive = None


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


def main():
    work = tempfile.mkdtemp(prefix="kv-readme-")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE, text=True).stdout.split()
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.join(work, os.path.dirname(f)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(work, f))
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    os.symlink(os.path.join(ROOT, "target"), os.path.join(work, "target"))
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target"), RUST_LOG="warn")
    background = []
    failures = 0
    try:
        for n, (directive, code) in enumerate(blocks(open(os.path.join(ROOT, "README.md")).read()), 1):
            first = code.strip().splitlines()[0] if code.strip() else ""
            if directive is None:
                print(f"block {n} ({first!r}) has no <!-- ci: ... --> directive"); failures += 1
                continue
            if directive.startswith("skip"):
                print(f"skip  {n}: {first}  [{directive}]")
                continue
            if directive.startswith(("bg", "try")):
                ports = [int(p) for p in directive.split()[1].split(",")]
                log = open(os.path.join(work, f"block-{n}.log"), "wb")
                script = os.path.join(work, f".block-{n}.sh")
                with open(script, "w") as f:
                    f.write(code + "\n")
                p = subprocess.Popen(["bash", script], cwd=work, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
                background.append(p)
                deadline = time.time() + 600  # the first may compile the project
                while time.time() < deadline and not all(listening(pt) for pt in ports):
                    time.sleep(0.2)
                ok = all(listening(pt) for pt in ports)
                print(f"{'bg   ' if ok else 'FAIL '} {n}: {first}  (ports {ports})")
                if ok and directive.startswith("try"):
                    page = subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}",
                                           f"http://localhost:{ports[0]}/state"], stdout=subprocess.PIPE, text=True)
                    ok = page.stdout == "200"
                    print(f"      /state answered {page.stdout}; stopping it")
                    stop([background.pop()])
                if not ok:
                    failures += 1
                    log.flush(); print(open(log.name, errors="replace").read()[-800:])
                continue
            if directive == "run":
                # From a file, not `bash -c CODE`: a `pkill -f PATTERN` in the block would
                # otherwise match (and kill) the very shell running it.
                script = os.path.join(work, f".block-{n}.sh")
                with open(script, "w") as f:
                    f.write(code + "\n")
                r = subprocess.run(["bash", "-euo", "pipefail", script], cwd=work, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
                print(f"{'ok   ' if r.returncode == 0 else 'FAIL '} {n}: {first}")
                print("      " + r.stdout.strip()[-600:].replace("\n", "\n      "))
                if r.returncode != 0:
                    failures += 1
                continue
            print(f"block {n}: unknown directive {directive!r}"); failures += 1
        if failures == 0:
            print("every README command ran as written")
    finally:
        stop(background)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


def stop(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
