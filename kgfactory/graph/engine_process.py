"""Child-process plumbing for the embedded engines: start a child that dies with its parent, find the engine
processes that serve a socket, tell live processes from dead ones, and stop one with a grace period.

Why: a redis-server child outlived every kill -9 of its parent (re-parented to PID 1) and kept holding the data
directory. On Linux the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG). That signal
fires when the *thread* that forked the child exits, so children are forked from one long-lived daemon thread,
never from a request or worker thread that may end. SIGKILL loses nothing the engine acknowledged: its
append-only file is fsynced on every write.
"""
from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


_T = TypeVar("_T")


class _Spawner:
    """Runs Popen on one daemon thread that lives as long as the process (see the module docstring)."""

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="kgf-engine-spawner", daemon=True)
                self._thread.start()
        done: queue.Queue[tuple[bool, Any]] = queue.Queue(1)
        self._q.put((fn, done))
        ok, value = done.get()
        if ok:
            return value
        raise value

    def _loop(self) -> None:
        while True:
            fn, done = self._q.get()
            try:
                done.put((True, fn()))
            except BaseException as e:  # handed to the caller's thread
                done.put((False, e))


_SPAWNER = _Spawner()


def dies_with_parent_supported() -> bool:
    return _PRCTL is not None


def spawn(cmd: list[str], die_with_parent: bool = True, **popen_kw) -> subprocess.Popen:
    """Popen(cmd); with die_with_parent (Linux), the child gets SIGKILL when this process dies, however it dies."""
    if not die_with_parent or _PRCTL is None:
        return subprocess.Popen(cmd, **popen_kw)
    prctl, parent = _PRCTL, os.getpid()

    def arm() -> None:  # runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return _SPAWNER.call(lambda: subprocess.Popen(cmd, preexec_fn=arm, **popen_kw))


# --- /proc reads (Linux); each answers None when it cannot tell ------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def alive(pid: int | None) -> bool:
    """The process exists and is not a zombie (a zombie runs nothing and holds no files)."""
    if not pid or pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    if Path("/proc/self/stat").exists():
        return False  # /proc works and has no entry: gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which the process started: with the pid, it names one process (pids are reused)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def engines_on(sock: Path) -> list[int]:
    """Live redis-server processes serving this Unix socket (redis-server's process title names it)."""
    want = str(sock)
    out: list[int] = []
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return out
    for d in entries:
        pid = int(d)
        try:
            comm = Path(f"/proc/{d}/comm").read_text().strip()
        except OSError:
            continue
        if comm != "redis-server":
            continue
        words = cmdline(pid).split()
        if any(w == want or w.endswith(":" + want) for w in words) and alive(pid):
            out.append(pid)
    return out


def looks_like_kgf(pid: int) -> bool:
    """A live Python (kgf, tests, an SDK user) that may legitimately share an engine it started."""
    line = cmdline(pid).lower()
    return alive(pid) and ("python" in line or "kgf" in line)


def wait_gone(pid: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    end = time.monotonic() + timeout
    while True:
        if (proc is not None and proc.poll() is not None) or not alive(pid):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)


def terminate(pid: int, grace: float = 5.0, proc: subprocess.Popen | None = None) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds (a stopped or deadlocked engine ignores SIGTERM); True once
    the process is gone. `proc`: our own child, reaped here."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError as e:
            log.warning("cannot signal pid %s: %s", pid, e)
            return False
        if wait_gone(pid, wait, proc):
            break
    if proc is not None:
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
    return not alive(pid)
