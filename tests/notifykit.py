"""Helpers for the notification tests: real HTTP receivers on 127.0.0.1 and a server with both hooks.

`Receiver` is an http.server in a thread that answers 200 (recording every
body and header), 500, or hangs, and can be switched between them.
`NotifyServer` is a bare repository whose pre-receive hook was installed by
`gitjit hook install` and whose post-receive hook by
`gitjit hook install`, with alice's clone holding the
approvals branch (policy of hookkit: deploy-prod, threshold 2, approvers
alice, bob and carol).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers import Clone, Keys, git, make_clone
from hookkit import BranchWriter


class Receiver:
    """`with Receiver("ok") as r:` serves http://127.0.0.1:<port>/hook; `r.mode` may change at any time."""

    def __init__(self, mode: str = "ok", hang: float = 30.0):
        self.mode = mode
        self.hang = hang
        self.received: list[tuple[dict, bytes]] = []  # (headers, body) of every request answered 200
        self.hits = 0
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.hits += 1
                if receiver.mode == "hang":
                    receiver.released.wait(receiver.hang)
                    return
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


class Listener:
    """A TCP port that records whether anything ever connects to it (for URLs that must never be contacted)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")




@dataclass
class NotifyServer:
    keys: Keys
    tmp: Path
    server: Path
    url: str
    alice: Clone
    writer: BranchWriter

    @classmethod
    def from_golden(cls, golden: Path, tmp: Path, keys: Keys, url: str | None = None) -> NotifyServer:
        from hookkit import copy_world
        world = copy_world(golden, tmp, keys, url)
        return cls(keys, tmp, world.server, world.url, world.alice, world.writer)

    def configure(self, name: str, **settings: str) -> None:
        for key, value in settings.items():
            git("config", f"gitjit.notify.{name}.{key}", value, cwd=self.server, env=self.keys.env)

    def push(self, clone: Clone | None = None, *refspecs: str) -> subprocess.CompletedProcess:
        clone = clone or self.alice
        return clone.git("push", "--porcelain", self.url, *(refspecs or ("approvals",)), check=False)

    def gitjit(self, *args: str, check: bool | int | None = None) -> subprocess.CompletedProcess:
        return self.alice.gitjit(*args, "--repo", str(self.server), check=check)

    def status(self) -> dict:
        return json.loads(self.gitjit("notify", "status", "--json", check=True).stdout)

    def spool(self, state: str) -> list[dict]:
        folder = self.server / "gitjit" / "notify" / state
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def clone(self, person: str) -> Clone:
        return make_clone(self.tmp, self.keys[person], self.keys, origin=self.url)


def accepted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"push refused:\n{result.stdout}\n{result.stderr}"


def command_log(path: Path) -> str:
    """A command endpoint appending each event body on a line of its own to `path`."""
    return f"cat >> '{path}' && echo >> '{path}'"


def logged_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
