#!/usr/bin/env python3
"""Fuzz the directory's whole HTTP API from its own OpenAPI document.

Starts a real directory and one real host over a fresh SQLite store, signs
in through the /login form, opens two sessions the way a browser does (so
calls about sessions reach more than their 404), then runs schemathesis
against GET /v1/openapi.json with the sign-in cookie, an allowed Origin and
the operators' bearer token on every request. Any 5xx, any answer whose
status, content type, headers or body the document does not describe, any
request the document allows that is refused or that it forbids that is
accepted, fails the run. The same cases every run, a bounded number per
operation: `cargo xtask test` installs the pinned schemathesis and runs
this on every change.

    python3 tests/fuzz/run.py --directory target/debug/directory \
        --host target/debug/host-server --schemathesis VENV/bin/schemathesis

`--seed N --max-examples 300` explores further. Only the standard library
besides schemathesis. Every process it starts is killed when it ends,
whatever happens.
"""

import argparse
import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

# The version `cargo xtask test` installs (xtask/src/tools.rs); its CLI
# changes between releases, so the flags below are for exactly this one.
SCHEMATHESIS_VERSION = "4.32.5"


def protocol_version():
    """The hello a host expects: `protocol::PROTOCOL_VERSION`, read from
    the crate so this driver never speaks an older protocol than the
    hosts it starts."""
    codec = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "protocol", "src", "codec.rs"
    )
    with open(codec, encoding="utf-8") as source:
        match = re.search(r"pub const PROTOCOL_VERSION: u16 = (\d+);", source.read())
    if match is None:
        sys.exit(f"fuzz: no PROTOCOL_VERSION in {codec}")
    return int(match.group(1))


PROTOCOL_VERSION = protocol_version()

# Every check schemathesis 4.32.5 has: no 5xx; status, content type,
# headers and body as documented; schema-valid requests accepted and
# invalid ones refused with a 4xx; required headers, unsupported methods
# (405 with Allow), authentication not ignored, resources gone once
# deleted.
CHECKS = "all"

# Far above what a run takes (seconds): only a hang reaches it.
RUN_TIMEOUT_S = 600

USER = "fuzz"
PASSWORD = "correct horse battery staple"
# Long enough that the fuzzer never stumbles on it: draining it would turn
# placement into a documented, but 5xx, "no healthy host".
HOST_ID = "fuzz-host-7c1d"


def log(message):
    print(f"fuzz: {message}", file=sys.stderr, flush=True)


def cli(argv, stdin=None):
    """Runs a command to its end; its standard output, or an exit naming
    the command and what it said."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    except OSError as error:
        raise SystemExit(f"fuzz: cannot run {argv[0]}: {error}")
    if done.returncode != 0:
        raise SystemExit(f"fuzz: `{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


class Processes:
    """The servers this run started, each in its own process group, all
    killed at the end."""

    def __init__(self, root):
        self.root = root
        self.children = []

    def start(self, name, argv, env, ready_prefix):
        """Starts a server and waits for its ready line (it prints the
        url it listens on); returns the port."""
        log_path = os.path.join(self.root, f"{name}.log")
        stderr = open(log_path, "wb")
        child = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
        stderr.close()
        self.children.append((name, child, log_path))
        deadline = time.monotonic() + 30
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([child.stdout], [], [], left)[0]:
                break
            line = child.stdout.readline().decode(errors="replace")
            if not line:
                break
            if line.startswith(ready_prefix):
                url = line.split(" listening on ", 1)[1].strip().rstrip("/")
                return int(url.rsplit(":", 1)[1])
        raise SystemExit(f"fuzz: {name} did not start ({' '.join(argv)})")

    def dump_logs(self, lines=40):
        for name, _, path in self.children:
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
            print(f"---- last lines of {name}'s log ----", file=sys.stderr)
            sys.stderr.writelines(tail)

    def stop_all(self):
        for _, child, _ in self.children:
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.wait()


def keygen(directory):
    out = cli([directory, "keygen"])
    pairs = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return pairs["THINLINE_TICKET_KEY"], pairs["THINLINE_TICKET_PUBLIC_KEY"]


def sign_in(port, origin):
    form = urllib.parse.urlencode({"user": USER, "password": PASSWORD})
    status, headers, body = request(
        port,
        "POST",
        "/login",
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin},
        form,
    )
    for name, value in headers:
        if name.lower() == "set-cookie" and value.startswith("thinline_login="):
            return value.split(";", 1)[0]
    raise SystemExit(f"fuzz: signing in answered {status} and set no login cookie: {body[:200]!r}")


def wait_host_live(port, deadline_s=20):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status, _, body = request(port, "GET", "/v1/hosts")
        if status == 200 and any(h["id"] == HOST_ID and h["live"] for h in json.loads(body)):
            return
        time.sleep(0.1)
    raise SystemExit(f"fuzz: host {HOST_ID} took no lease within {deadline_s} s")


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def hello(ticket, session):
    """The protocol crate's `encode_hello`: magic, the version (little
    endian), then the postcard body: the ticket as a length-prefixed string,
    the session's 16 bytes, the size as two varints."""
    ticket = ticket.encode()
    body = varint(len(ticket)) + ticket + bytes.fromhex(session) + varint(80) + varint(24)
    return b"TL" + PROTOCOL_VERSION.to_bytes(2, "little") + body


def start_session(port, headers):
    """A running session of the fuzz user, as a browser makes one: ask
    for a placement, then open the host's WebSocket with its ticket; the
    host records the session when it starts it. Without one, every call
    about a session stops at 404."""
    status, _, body = request(
        port, "POST", "/v1/placement", dict(headers, **{"Content-Type": "application/json"}), '{"new": true}'
    )
    if status != 200:
        raise SystemExit(f"fuzz: placing a new session answered {status}: {body[:300]!r}")
    placed = json.loads(body)
    host = urllib.parse.urlsplit(placed["url"])
    sock = socket.create_connection((host.hostname, host.port), timeout=10)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {headers['Origin']}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"fuzz: the host refused the WebSocket: {answer[:300]!r}")
        payload = hello(placed["ticket"], placed["session"])
        mask = os.urandom(4)
        assert len(payload) < 65536
        frame = bytes([0x82, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask
        frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(frame)
        # The first frame back is the welcome, or a close frame saying why not.
        first = answer.split(b"\r\n\r\n", 1)[1] or sock.recv(4096)
        if not first or first[0] & 0x0F == 0x8:
            log(f"the host closed the session's WebSocket: {first[:300]!r}")
            raise SystemExit(1)
    finally:
        sock.close()
    return placed["session"]


def wait_sessions_running(port, headers, ids, deadline_s=20):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status, _, body = request(port, "GET", "/v1/sessions", headers)
        running = {s["id"] for s in json.loads(body) if s["state"] == "running"} if status == 200 else set()
        if set(ids) <= running:
            return
        time.sleep(0.1)
    raise SystemExit(f"fuzz: sessions {ids} are not listed as running within {deadline_s} s")


def schemathesis(args, base, headers, extra):
    # The cookie and the token go in the environment, never on a command
    # line: the config file names them as placeholders.
    config = os.path.join(args.root, "schemathesis.toml")
    with open(config, "w") as f:
        f.write("[headers]\n")
        for i, name in enumerate(headers):
            f.write(f'{name} = "${{FUZZ_HEADER_{i}}}"\n')
    env = dict(os.environ, **{f"FUZZ_HEADER_{i}": value for i, value in enumerate(headers.values())})
    argv = [
        args.schemathesis,
        "--config-file",
        config,
        "run",
        f"{base}/v1/openapi.json",
        "--checks",
        CHECKS,
    ]
    # By default the same cases every run, and no database of earlier
    # failures; a seed explores other cases, reproducibly.
    if args.seed is None:
        argv += ["--generation-deterministic"]
    else:
        argv += ["--seed", str(args.seed)]
    argv += [
        "--max-examples",
        str(args.max_examples),
        # The cookie and token come from the headers below; generated ones
        # would only test that strangers are refused, over and over.
        "--generation-with-security-parameters",
        "false",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    argv += extra + args.extra
    log(f"$ {' '.join(argv)}  (headers {', '.join(headers)} from {config})")
    # In the run's own folder: schemathesis keeps a cache of failures in
    # its working directory, which would be replayed in later runs.
    try:
        return subprocess.run(argv, cwd=args.root, env=env, timeout=RUN_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        log(f"schemathesis did not finish within {RUN_TIMEOUT_S} s")
        return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", required=True, help="the directory binary")
    parser.add_argument("--host", required=True, help="the host-server binary")
    parser.add_argument("--schemathesis", default="schemathesis", help="the schemathesis CLI")
    parser.add_argument("--seed", type=int, help="explore other cases than CI's fixed ones, reproducibly")
    parser.add_argument("--max-examples", type=int, default=50, help="test cases per operation")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more schemathesis arguments")
    args = parser.parse_args()
    if args.extra[:1] == ["--"]:
        args.extra = args.extra[1:]
    for name in ("directory", "host"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    if os.sep in args.schemathesis:
        args.schemathesis = os.path.abspath(args.schemathesis)
    version = cli([args.schemathesis, "--version"])
    if not version.strip().endswith(SCHEMATHESIS_VERSION):
        raise SystemExit(
            f"fuzz: this driver's flags are for schemathesis {SCHEMATHESIS_VERSION}, not {version.strip()!r}: "
            f"pip install schemathesis=={SCHEMATHESIS_VERSION}"
        )

    started = time.monotonic()
    root = args.root = tempfile.mkdtemp(prefix="thinline-fuzz-")
    # Sessions run as their user's own uid, which must pass to its home.
    os.chmod(root, 0o711)
    processes = Processes(root)
    try:
        store = f"sqlite:{os.path.join(root, 'store.db')}"
        ticket_key, public_key = keygen(args.directory)
        operator_token = os.urandom(16).hex()
        # What the directory shows a host to end a session there.
        host_token = os.urandom(16).hex()
        cli([args.directory, "user", "add", USER, "--store", store], stdin=PASSWORD + "\n")
        host_port = free_port()
        enrolled = cli(
            [args.directory, "host", "add", HOST_ID, "--url", f"http://127.0.0.1:{host_port}", "--store", store]
        )
        host_secret = enrolled.strip().split("=", 1)[1]

        # Secrets only in the environment, never on a command line.
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"), NO_COLOR="1", THINLINE_HOST_TOKEN=host_token)
        env.pop("THINLINE_STORE", None)
        directory_env = dict(env, THINLINE_TICKET_KEY=ticket_key, THINLINE_OPERATOR_TOKEN=operator_token)
        # A page to serve, so GET / has one to answer with.
        static = os.path.join(root, "static")
        os.makedirs(static)
        for name, text in [("index.html", "<!doctype html><title>fuzz</title>"), ("style.css", "body {}")]:
            with open(os.path.join(static, name), "w") as f:
                f.write(text)
        port = processes.start(
            "directory",
            [args.directory, "serve", "--listen", "127.0.0.1:0", "--store", store, "--static-dir", static],
            directory_env,
            "thinline: directory listening on ",
        )
        base = f"http://127.0.0.1:{port}"
        os.makedirs(os.path.join(root, "homes"))
        host_env = dict(env, THINLINE_TICKET_PUBLIC_KEY=public_key, THINLINE_HOST_SECRET=host_secret)
        processes.start(
            "host",
            [
                args.host, "serve",
                "--listen", f"127.0.0.1:{host_port}",
                "--host-id", HOST_ID,
                "--store", store,
                "--directory", base,
                "--home-root", os.path.join(root, "homes"),
                "--runtime-dir", os.path.join(root, "runtime"),
                "--program", "/bin/sh",
            ],
            host_env,
            f"thinline: host {HOST_ID} listening on ",
        )
        wait_host_live(port)
        cookie = sign_in(port, base)
        headers = {"Cookie": cookie, "Origin": base, "Authorization": f"Bearer {operator_token}"}
        sessions = [start_session(port, headers) for _ in range(2)]
        wait_sessions_running(port, headers, sessions)
        log(f"directory at {base}, host {HOST_ID} live, signed in as {USER}, sessions {', '.join(sessions)} running")

        # Four runs, so that no call takes away what the others need:
        # ending sessions leaves none to place or report on; an operator's
        # drain of the one host (the stateful phase finds its id in GET
        # /v1/hosts) turns placement into "no healthy host", a 503 by
        # design; signing out ends the login every call uses.
        groups = [
            ("every operation but ending sessions, the host registry and POST /logout",
             ["--exclude-path-regex", "/end$|^/v1/hosts|^/logout$"]),
            ("ending sessions: POST /v1/sessions/{id}/end, POST /sessions/{id}/end (ids from GET /v1/sessions)",
             ["--include-path-regex", "/end$|^/v1/sessions$"]),
            ("the host registry: GET /v1/hosts, POST and DELETE /v1/hosts/{id}/drain",
             ["--include-path-regex", "^/v1/hosts"]),
            ("POST /logout", ["--include-path", "/logout"]),
        ]
        failed = []
        for name, selection in groups:
            log(f"fuzzing {name}")
            if schemathesis(args, base, headers, selection) != 0:
                failed.append(name)
        for name, child, _ in processes.children:
            if child.poll() is not None:
                failed.append(f"the {name} process died (exit {child.returncode})")
        elapsed = time.monotonic() - started
        if failed:
            processes.dump_logs()
            log(f"FAILED after {elapsed:.0f} s: {'; '.join(failed)}")
            log("each failure above names the operation, the check and a curl command that reproduces it")
            return 1
        log(f"passed in {elapsed:.0f} s: no 5xx, every answer as the OpenAPI document says")
        return 0
    except SystemExit:
        processes.dump_logs()
        raise
    finally:
        processes.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
