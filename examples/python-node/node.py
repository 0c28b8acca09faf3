#!/usr/bin/env python3
"""A key-value storage node in plain Python (standard library only).

    python3 node.py -n alice -p 5000 [--host 0.0.0.0]     (or KV_NAME, KV_PORT, KV_HOST)
    python3 node.py -n alice -p 5000 --join https://teacher.example --join-token T \
        [--advertise https://alice.ngrok-free.app]         (join the class, leave on Ctrl-C)

It keeps a dict in memory and speaks the same JSON API as the Rust node, so the proxy can
shard or replicate across it. Every answer is JSON except /state, which is an HTML page:

    POST|PUT    /put?key=K   body {"value": V}  -> {"message": "stored", "key", "node"}
    GET         /get?key=K                      -> {"value": V, "key", "node"} or 404
    DELETE|POST /delete?key=K                   -> {"message": "deleted", "key", "node"} or 404
    GET         /dump                           -> {"node", "count", "data": {key: value}}
    POST        /clear                          -> {"message": "cleared", "removed", "node"}
    GET         /health                         -> {"status": "ok", "node", "keys"}
    GET         /state                          -> HTML table of every key and value
"""

import argparse
import html
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = "kv1"              # this node's name, set from the command line in main()
data = {}                 # key (str) -> value (any JSON value, as json.loads parsed it)
lock = threading.Lock()   # each request runs on its own thread, so guard every use of data
MAX_BODY = (1 << 20) + 1024  # a 1 MiB value plus its {"value": ...} wrapper

# Each path and the methods it takes (HEAD is served wherever GET is).
ROUTES = {"/put": ("POST", "PUT"), "/get": ("GET",), "/delete": ("DELETE", "POST"),
          "/dump": ("GET",), "/clear": ("POST",), "/health": ("GET",), "/state": ("GET",)}


class ApiError(Exception):
    """A request we refuse: answered with `status` and {"error": message, **extra}."""
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


def query_key(query):
    """The `key` query parameter, percent-decoded ('+' is a space); 400 if missing or empty."""
    try:
        params = parse_qs(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "the query string is not valid UTF-8")
    if "key" not in params:
        raise ApiError(400, "missing key: add ?key=... to the URL")
    if params["key"][0] == "":
        raise ApiError(400, "empty key: ?key= needs a value")
    return params["key"][0]  # ?key=a&key=b -> "a"


def body_value(body):
    """The V of a {"value": V} body, whatever the Content-Type header says."""
    hint = '; send a JSON body like {"value": "hello"}'
    try:
        parsed = json.loads(body)
        # Refuse what other JSON readers (the Rust proxy) can't read back: NaN, Infinity,
        # 1e999 (a float too big), and strings with lone UTF-16 surrogates like "\ud800".
        json.dumps(parsed, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, nesting far too deep
        raise ApiError(400, f"the body is not valid JSON ({e}){hint}")
    if not isinstance(parsed, dict) or "value" not in parsed:
        raise ApiError(400, 'the body must be a JSON object with a "value" field' + hint)
    return parsed["value"]


def answer(route, query, body):
    """The JSON answer (a dict) for one of the JSON routes."""
    if route == "/put":
        key, value = query_key(query), body_value(body)
        with lock:
            data[key] = value
        return {"message": "stored", "key": key, "node": NAME}
    if route in ("/get", "/delete"):
        key = query_key(query)
        with lock:
            if key not in data:  # test with `in`: a stored value may itself be null
                raise ApiError(404, "key not found", key=key, node=NAME)
            if route == "/get":
                return {"value": data[key], "key": key, "node": NAME}
            del data[key]
        return {"message": "deleted", "key": key, "node": NAME}
    if route == "/dump":
        with lock:
            pairs = dict(sorted(data.items()))  # a sorted copy, taken while holding the lock
        return {"node": NAME, "count": len(pairs), "data": pairs}
    if route == "/clear":
        with lock:
            removed = len(data)
            data.clear()
        return {"message": "cleared", "removed": removed, "node": NAME}
    with lock:  # /health
        return {"status": "ok", "node": NAME, "keys": len(data)}


def state_page():
    """The /state page: every key and value, escaped so stored text can't inject HTML."""
    with lock:
        pairs = sorted(data.items())
    rows = ""
    for key, value in pairs:
        shown = json.dumps(value, ensure_ascii=False)
        rows += f"<tr><td>{html.escape(key)}</td><td>{html.escape(shown)}</td></tr>\n"
    return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(NAME)}</title>\n"
            "<style>body{font:1.4rem sans-serif} td{font-family:monospace;padding:0 1rem}</style>\n"
            f"<h1>Node {html.escape(NAME)}</h1><p>{len(pairs)} keys</p>\n"
            f"<table><tr><th>key</th><th>value</th></tr>\n{rows}</table>\n")


class Handler(BaseHTTPRequestHandler):
    def handle_any_method(self):
        url = urlsplit(self.path)
        try:
            body = self.read_body()  # read it first, even if we then refuse the request
            if url.path not in ROUTES:
                raise ApiError(404, f"no route {url.path}", path=url.path)
            allowed = ROUTES[url.path]
            if ("GET" if self.command == "HEAD" else self.command) not in allowed:
                use = " or ".join(allowed)
                raise ApiError(405, f"{url.path} does not take {self.command}; use {use}")
            if url.path == "/state":
                return self.send(200, state_page(), "text/html; charset=utf-8")
            self.send(200, json.dumps(answer(url.path, url.query, body), ensure_ascii=False))
        except ApiError as e:
            allow = ", ".join(ROUTES[url.path]) if e.status == 405 else None
            self.send(e.status, json.dumps(e.body, ensure_ascii=False), allow=allow)

    # http.server calls do_<METHOD>; every method goes through the same function.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any_method

    def read_body(self):
        """The request body: exactly Content-Length bytes (b"" when there is none)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(411, "send the body with a Content-Length, not chunked")
        length = self.headers.get("Content-Length", "0")
        if not length.isdecimal():  # also refuses "-1", which would read until the socket closes
            raise ApiError(400, "Content-Length is not a number")
        if int(length) > MAX_BODY:
            raise ApiError(413, f"the body is larger than {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    def send(self, status, text, content_type="application/json", allow=None):
        payload = text.encode("utf-8")
        self.send_response(status)  # this also logs the request (see log_request)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if allow:
            self.send_header("Allow", allow)  # HTTP wants it on every 405
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_request(self, code="-", size="-"):
        """One line per request on stderr: node, method, path, decoded key, status."""
        url = urlsplit(getattr(self, "path", ""))  # unset if the request line was garbage
        key = parse_qs(url.query, keep_blank_values=True).get("key")
        shown = f" key={key[0]!r}" if key else ""
        self.log_message("%s %s %s%s -> %s", NAME, self.command, url.path, shown, int(code))


def ask_proxy(proxy, path, token, body):
    """POST a JSON body to the teacher's proxy; (status, answer as a dict)."""
    req = urllib.request.Request(proxy.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json",
                                          "ngrok-skip-browser-warning": "1"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def join(args, port, joined):
    """Asks the proxy to add this node (POST /join), retrying while it cannot answer; keeps
    the secret it hands out in `joined`, which leaving needs."""
    body = {"name": NAME}
    body.update({"url": args.advertise} if args.advertise else {"port": port})
    wait = 0.5
    while True:
        try:
            status, said = ask_proxy(args.join, "/join", args.join_token, body)
        except (OSError, ValueError) as e:
            status, said = None, {"error": f"cannot reach the proxy at {args.join}: {e}"}
        if status == 200:
            joined["secret"] = said.get("secret") or joined.get("secret")
            print(f"joined the class at {args.join}: {said.get('message')}", flush=True)
            return
        if status in (400, 401, 409):  # a person must change something first
            print(f"the proxy refused to add this node: {status} {said.get('error')}", flush=True)
            return
        print(f"cannot join yet ({status or ''} {said.get('error')}); again in {wait:.0f} s", flush=True)
        time.sleep(wait)
        wait = min(wait * 2, 10)


def stop(*_):
    """SIGTERM (`kill`, `docker stop`) stops the node as Ctrl-C does, so it leaves the class."""
    raise KeyboardInterrupt


def main():
    global NAME
    env, cli = os.environ, argparse.ArgumentParser(description="A key-value storage node.")
    cli.add_argument("-n", "--name", default=env.get("KV_NAME", "kv1"), help="node name (KV_NAME)")
    cli.add_argument("-p", "--port", type=int, default=env.get("KV_PORT", 5000),
                     help="port; 0 picks a free one (KV_PORT)")
    cli.add_argument("--host", default=env.get("KV_HOST", "0.0.0.0"), help="address (KV_HOST)")
    cli.add_argument("--join", default=env.get("KV_JOIN"), help="a teacher's proxy to join (KV_JOIN)")
    cli.add_argument("--join-token", default=env.get("KV_JOIN_TOKEN"), help="the class's token (KV_JOIN_TOKEN)")
    cli.add_argument("--advertise", default=env.get("KV_ADVERTISE"),
                     help="the URL the proxy reaches this node at, e.g. your ngrok URL (KV_ADVERTISE)")
    args = cli.parse_args()
    NAME = args.name
    if args.join and not args.join_token:
        sys.exit("node.py: --join needs --join-token (or KV_JOIN_TOKEN): the token the teacher gave the class")
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as e:  # a busy port, most often: one sentence, not a traceback
        sys.exit(f"node.py: cannot listen on {args.host}:{args.port}: {e.strerror}; pick another port with -p")
    print(f"node {NAME} listening on http://{args.host}:{server.server_port} "
          f"(open http://localhost:{server.server_port}/state)", flush=True)
    joined = {}
    if args.join:
        threading.Thread(target=join, args=(args, server.server_port, joined), daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) stops the node
        pass
    if joined.get("secret"):
        try:
            status, _ = ask_proxy(args.join, "/leave", args.join_token, {"name": NAME, "secret": joined["secret"]})
            print(f"left the class at {args.join}" if status == 200 else f"the proxy did not take the leave: {status}")
        except (OSError, ValueError) as e:
            print(f"could not tell the proxy this node is leaving: {e}")


if __name__ == "__main__":
    main()
