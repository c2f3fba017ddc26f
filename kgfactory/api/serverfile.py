"""`<data_dir>/api/server.json`: how the CLI finds the server that holds a data directory.

Milvus Lite lets one process open a data directory, so while `kgf serve` runs, `kgf ask` and `kgf ingest`
go through its HTTP API and the other commands stop with a message saying so.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def server_file(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "api" / "server.json"


def announce(data_dir: Path, url: str) -> Path:
    p = server_file(data_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    return p


def withdraw(data_dir: Path) -> None:
    p = server_file(data_dir)
    try:
        if json.loads(p.read_text()).get("pid") == os.getpid():
            p.unlink()
    except (OSError, ValueError):
        pass


def running_server(data_dir: Path) -> dict | None:
    """{pid, url} of a live server for this data dir, or None (a stale file from a dead process is ignored)."""
    p = server_file(data_dir)
    try:
        info = json.loads(p.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info
