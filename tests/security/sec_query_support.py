"""Helpers for the analyst-query security tests (issue 14, defects 2, 3, 5, 6): a loopback listener that records
every connection, a `kgf serve` child process, and a call with a deadline that cannot hang the session."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from api_support import free_port


class Listener:
    """A TCP listener on 127.0.0.1 that accepts and records every connection (SSRF canary). It answers an HTTP
    request with `body` (JSON by default) after reading it, so an engine that fetches gets a reply."""

    def __init__(self, body: bytes = b'{"head": {"vars": []}, "results": {"bindings": []}}',
                 content_type: str = "application/sparql-results+json"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.hits: list[bytes] = []
        self.body, self.content_type = body, content_type
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                self.hits.append(data)  # counted on connect, before any reply can reach the caller
                try:
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            break
                        data += more
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type.encode() +
                                 b"\r\nContent-Length: " + str(len(self.body)).encode() +
                                 b"\r\nConnection: close\r\n\r\n" + self.body)
                except OSError:
                    pass
                self.hits[-1] = data

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.sock.close()


def call(fn, seconds: float):
    """fn() in a daemon thread: (result, elapsed s), or AssertionError when it takes longer than `seconds`, so a
    regression that hangs the engine fails the test instead of hanging the session."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:
            box["error"] = e

    t0 = time.monotonic()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        raise AssertionError(f"no answer within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["result"], time.monotonic() - t0


class ServeProcess:
    """`kgf serve --open` as a child process (a crash in it cannot take the test session down), log in a file."""

    def __init__(self, data_dir: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.env = {**os.environ, "KGF_DATA_DIR": str(data_dir), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
                    **env}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> "ServeProcess":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port",
                                      str(self.port)], env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"kgf serve did not start: {self.log()}")
            time.sleep(0.5)

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return httpx.get(self.url + "/readyz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        from kgfactory.graph.falkordb_server import _send_shutdown, socket_path

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        sock = socket_path(Path(self.env["KGF_DATA_DIR"]).resolve() / "graph")
        if sock.exists():  # the server died without stopping its graph engine: stop it here
            _send_shutdown(sock)
        self._log.close()
