"""Issue 14, defect 10: the embedded graph server must not outlive its parent, and stale state left by a dead
parent (api/server.json, a socket, an orphaned redis-server from an older version) is detected on the next start.

Real processes only: the parent is a Python subprocess (or `kgf serve`), it is killed with SIGKILL, and we look at
/proc for the redis-server child."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api_support import free_port, wait_ready

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux")

REPO = Path(__file__).resolve().parents[2]


def _env(data: Path, **extra) -> dict:
    env = {**os.environ, "KGF_DATA_DIR": str(data), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.update(extra)
    return env


def _state(pid: int) -> str | None:
    """The /proc state letter, None when the process is gone (a zombie counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state = stat[stat.rindex(")") + 2:].split()[0]
    return None if state in "ZX" else state


def _redis_children(parent: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm == "redis-server" and int(stat[stat.rindex(")") + 2:].split()[1]) == parent and _state(int(d.name)):
            out.append(int(d.name))
    return out


def _wait(pred, timeout: float, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


OPEN_STORE = """
import sys, time
from pathlib import Path
from kgfactory.bootstrap import build_graph_store
from kgfactory.ontology.loader import load_ontology
from kgfactory.settings import Settings
g = build_graph_store(Settings(data_dir=Path(sys.argv[1])), load_ontology())
g.begin_documents([])
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(120)
def _ready(proc: subprocess.Popen) -> bool:
    """True once the child prints "ready"; the lines before it are its log (a slow start says it is loading)."""
    for line in proc.stdout:
        if line.strip() == "ready":
            return True
    return False


def test_graph_server_dies_with_a_killed_parent(tmp_path):
    """kill -9 of a process holding the embedded graph: its redis-server goes within seconds (old code: 10 of 10
    survived, re-parented to PID 1), and the next process starts its own server over the same data dir."""
    data = tmp_path / "d"
    parent = subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(data)], env=_env(data), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert _ready(parent), parent.stdout.read()
        kids = _wait(lambda: _redis_children(parent.pid), 10)
        assert len(kids) == 1, kids
        parent.kill()
        parent.wait(10)
        assert _wait(lambda: _state(kids[0]) is None, 5), f"redis-server {kids[0]} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for k in _redis_children(1):  # never leave an orphan behind, even when the test fails
            if str(data) in Path(f"/proc/{k}/cmdline").read_text(errors="replace"):
                os.kill(k, signal.SIGKILL)
    again = subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(data)], env=_env(data), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert _ready(again)
        assert len(_wait(lambda: _redis_children(again.pid), 10)) == 1  # its own server, not a re-attached orphan
    finally:
        again.kill()
        again.wait(10)


LEAVE_ENGINE = """
import json, os, sys
from pathlib import Path
from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
from kgfactory.graph.falkordb_store import FalkorDBGraphStore
from kgfactory.types import Document
try:
    e = EmbeddedFalkorDB(Path(sys.argv[1]), detached=True)  # no parent-death signal, like an older kgf
except TypeError:  # the code before the fix: never had one
    e = EmbeddedFalkorDB(Path(sys.argv[1]))
e.start()
g = FalkorDBGraphStore(unix_socket_path=str(e.sock))
g.begin_documents([Document(id="d1", source="/s/d1", title="T", mime="text/plain", text="x" * 20)])
if sys.argv[2] == "legacy":  # an older version wrote no marker: nothing says it was left on purpose
    (e.dir / "engine.json").unlink(missing_ok=True)
print(e.pid(), flush=True)
os._exit(0)
"""


def _leave_engine(data: Path, kind: str) -> int:
    out = subprocess.run([sys.executable, "-c", LEAVE_ENGINE, str(data), kind], env=_env(data), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    assert _state(pid) is not None  # its parent has exited: re-parented, still running
    return pid


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stuck", [False, True], ids=["answering", "stuck"])
def test_orphan_of_an_older_version_is_stopped_on_start(tmp_path, stuck, caplog):
    """An orphaned redis-server (parent dead, no marker saying it was left on purpose) holding the data dir is
    stopped by the next start, even when it does not answer (SIGSTOP), and the data it held is all there.
    (Old code re-attached to an answering orphan and never stopped it; a stuck one had its socket deleted and a
    second server started over the same files.)"""
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
    from kgfactory.graph.falkordb_store import FalkorDBGraphStore

    data = tmp_path / "d"
    orphan = _leave_engine(data, "legacy")
    try:
        if stuck:
            os.kill(orphan, signal.SIGSTOP)
        e = EmbeddedFalkorDB(data)
        with caplog.at_level("WARNING", logger="kgfactory.graph.falkordb_server"):
            e.start()
        assert e.started_here and e.pid() != orphan
        assert _state(orphan) is None, "the orphan still runs"
        assert f"orphaned graph engine pid {orphan}" in caplog.text
        g = FalkorDBGraphStore(unix_socket_path=str(e.sock), on_close=e.stop)
        assert g.get_document("d1").id == "d1"  # fsynced on write: survives SHUTDOWN and SIGKILL alike
        g.close()
        assert _state(orphan) is None and not e.sock.exists()
    finally:
        _kill(orphan)


@pytest.mark.timeout(120)
def test_engine_left_running_on_purpose_is_reattached(tmp_path):
    """KGF_FALKORDB_KEEP_RUNNING=true: the server outlives its process on purpose and the next one shares it."""
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB

    data = tmp_path / "d"
    kept = _leave_engine(data, "detached")
    try:
        e = EmbeddedFalkorDB(data)
        e.start()
        assert not e.started_here and _state(kept) is not None
    finally:
        _kill(kept)


@pytest.mark.timeout(120)
def test_stuck_engine_of_a_live_process_is_refused_with_its_pid(tmp_path):
    """A server that does not answer while the process that started it lives: no second server over the same
    files (old code deleted the socket and started one); a clear error naming the pid instead."""
    from kgfactory.errors import GraphStoreError
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB

    data = tmp_path / "d"
    holder = subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(data)], env=_env(data), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    kid = None
    try:
        assert _ready(holder)
        kid = _wait(lambda: _redis_children(holder.pid), 10)[0]
        os.kill(kid, signal.SIGSTOP)
        with pytest.raises(GraphStoreError, match=f"pid {kid}") as refused:
            EmbeddedFalkorDB(data).start()
        assert type(refused.value).__name__ == "GraphUnavailableError"  # HTTP 503
        assert _state(kid) is not None and EmbeddedFalkorDB(data).sock.exists()  # left alone
    finally:
        if kid:
            os.kill(kid, signal.SIGCONT)
        holder.kill()
        holder.wait(10)


def test_stale_server_file_is_detected_and_removed(tmp_path, caplog):
    """server.json naming a dead pid, or a live pid that is now another process, is stale: removed with a log
    line. (Old code trusted any live pid, so a reused pid made `kgf serve` refuse and the CLI call a dead URL.)"""
    from kgfactory.api.serverfile import announce, running_server, server_file

    data = tmp_path / "d"
    announce(data, "http://127.0.0.1:1")
    assert running_server(data)["pid"] == os.getpid()  # this process, as it started
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for info in ({"pid": sleeper.pid, "url": "http://127.0.0.1:2"},  # an older file: a live pid, not kgf
                     {"pid": sleeper.pid, "url": "http://127.0.0.1:3", "started": 1},  # a pid now reused
                     {"pid": 2 ** 22 + 7, "url": "http://127.0.0.1:4", "started": 1}):  # no such process
            server_file(data).write_text(json.dumps(info))
            with caplog.at_level("WARNING", logger="kgfactory.api.serverfile"):
                assert running_server(data) is None, info
            assert not server_file(data).exists() and info["url"] in caplog.text
    finally:
        sleeper.kill()
        sleeper.wait()


def _serve(data: Path, port: int, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=_env(data, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.timeout(600)
def test_kgf_serve_kill_9_leaves_no_engine_and_restarts(tmp_path):
    """kill -9 of `kgf serve`: its redis-server dies with it; server.json still names the dead pid; the next
    `kgf serve` over the same data dir says the file was stale, replaces it, and answers."""
    data = tmp_path / "d"
    port = free_port()
    first = _serve(data, port)
    kids: list[int] = []
    try:
        wait_ready(first, f"http://127.0.0.1:{port}")
        kids = _redis_children(first.pid)
        assert len(kids) == 1, kids
        first.kill()
        first.wait(10)
        assert _wait(lambda: _state(kids[0]) is None, 5), f"redis-server {kids[0]} outlived kill -9 of kgf serve"
    finally:
        if first.poll() is None:
            first.kill()
        for k in kids:
            _kill(k)
    assert json.loads((data / "api" / "server.json").read_text())["pid"] == first.pid
    port = free_port()
    second = _serve(data, port)
    try:
        wait_ready(second, f"http://127.0.0.1:{port}")
        info = json.loads((data / "api" / "server.json").read_text())
        assert info["pid"] == second.pid and info["url"] == f"http://127.0.0.1:{port}"
        assert len(_redis_children(second.pid)) == 1
    finally:
        second.send_signal(signal.SIGTERM)
        out = second.communicate(timeout=120)[0]
    assert "stale server file" in out and f"pid {first.pid} is not running" in out, out[-3000:]
    assert not (data / "api" / "server.json").exists()
