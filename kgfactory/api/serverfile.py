"""`<data_dir>/api/server.json`: how the CLI finds the server that holds a data directory.

Milvus Lite lets one process open a data directory, so while `kgf serve` runs, `kgf ask` and `kgf ingest`
go through its HTTP API and the other commands stop with a message saying so. A file left by a server that
died without cleaning up (kill -9, a crash, a reboot) is detected and removed: its pid is gone, or now names
another process (the file records the process start time; pids are reused).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..graph.engine_process import alive, cmdline, start_time

log = logging.getLogger(__name__)


def server_file(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "api" / "server.json"


def announce(data_dir: Path, url: str) -> Path:
    p = server_file(data_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url, "started": start_time(os.getpid())}))
    os.replace(tmp, p)  # readers never see half a file
    return p


def withdraw(data_dir: Path) -> None:
    p = server_file(data_dir)
    try:
        if json.loads(p.read_text()).get("pid") == os.getpid():
            p.unlink()
    except (OSError, ValueError):
        pass


def _stale(info: dict) -> str | None:
    """Why the file no longer names a live server, or None when it does (or we cannot tell)."""
    pid = int(info["pid"])
    if not alive(pid):
        return f"pid {pid} is not running"
    started = info.get("started")
    now = start_time(pid)
    if started is not None and now is not None and int(started) != now:
        return f"pid {pid} is now another process ({cmdline(pid)[:80]!r})"
    if started is None:  # written by an older version: the server was `kgf serve`
        line = cmdline(pid).lower()
        if line and "kgf" not in line:
            return f"pid {pid} is now another process ({line[:80]!r})"
    return None


def running_server(data_dir: Path) -> dict | None:
    """{pid, url} of a live server for this data dir, or None (a stale file is removed, with a log line)."""
    p = server_file(data_dir)
    try:
        info = json.loads(p.read_text())
        why = _stale(info)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if why is None:
        return info
    log.warning("removing the stale server file %s (url %s): %s", p, info.get("url"), why)
    try:
        p.unlink()
    except OSError:
        pass
    return None
