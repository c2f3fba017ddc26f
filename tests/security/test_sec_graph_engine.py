"""Issue 14, defect 4: the embedded graph engine must never hang its callers.

- Analysts' tenant views are built without GRAPH.COPY (which forked the persistent engine and, colliding with
  an automatic AOF rewrite, deadlocked FalkorDB), in a private engine without persistence, and only when the
  tenant's own data moved. Tenant isolation holds in every answer.
- Every graph call has a client-side deadline: a stopped engine (SIGSTOP) gives GraphUnavailableError, HTTP 503
  and a failing /readyz, never a hang; SIGTERM of `kgf serve` ends in bounded time and kills a stuck engine.

Real engines only (embedded FalkorDB, Milvus Lite, MiniLM); SIGSTOP/SIGCONT stand in for a deadlocked engine.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from api_support import free_port, wait_ready

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc are Linux here")

REPO = Path(__file__).resolve().parents[2]


def _write(g, doc_id: str, tenant: str, names=("ann", "bob")) -> None:
    from kgfactory.types import Chunk, Document, Entity, Mention, Relation

    d = Document(id=doc_id, source=f"/src/{doc_id}", title=f"T {doc_id}", mime="text/plain", text="x" * 20,
                 tenant=tenant)
    ch = [Chunk(id=f"{doc_id}_c{k}", doc_id=doc_id, tenant=tenant, index=k, text=f"text {k} of {doc_id}", start=k,
                end=k + 1) for k in range(2)]
    g.begin_documents([d])
    g.write_chunks(ch)
    ents = [Entity(id=f"{tenant}_{n}", name=n.title(), label="Person", tenant=tenant) for n in names]
    g.write_extraction(ents, [Mention(chunk_id=ch[0].id, entity_id=e.id) for e in ents],
                       [Relation(source_id=ents[0].id, target_id=ents[1].id, type="CO_OCCURS", chunk_ids=[ch[0].id])])
    g.complete_documents([{"id": doc_id, "chunks": 2, "entities": len(ents), "run_id": "r"}])


@contextmanager
def _graph(tmp_path: Path, call_timeout_s: float = 30.0):
    """The embedded engine, the store over it and the analysts' views, as `kgf serve` wires them."""
    from kgfactory.bootstrap import build_cypher_views
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
    from kgfactory.graph.falkordb_store import FalkorDBGraphStore
    from kgfactory.settings import Settings

    data = tmp_path / "data"
    server = EmbeddedFalkorDB(data)
    server.start()
    try:
        store = FalkorDBGraphStore(unix_socket_path=str(server.sock), on_close=server.stop,
                                   **({"call_timeout_s": call_timeout_s} if _has_deadline() else {}))
    except Exception:
        server.stop()
        raise
    store.ensure_schema()
    svc = SimpleNamespace(settings=Settings(data_dir=data, graph_call_timeout_s=call_timeout_s), graph=store,
                          _closers=[], cypher_views=None)
    svc.on_close = svc._closers.append
    views = build_cypher_views(svc)
    try:
        yield server, store, views
    finally:
        for fn in reversed(svc._closers):
            fn()
        store.close()


def _has_deadline() -> bool:
    import inspect

    from kgfactory.graph.falkordb_store import FalkorDBGraphStore

    return "call_timeout_s" in inspect.signature(FalkorDBGraphStore).parameters


def _info(sock: Path, section: str) -> dict:
    import redis

    r = redis.Redis(unix_socket_path=str(sock), socket_timeout=10)
    try:
        return r.info(section)
    finally:
        r.close()


def _rows(views, tenant: str, cypher: str) -> list:
    return views.run(cypher, {}, tenant, 5000, 1000)[1]


TENANTS = "MATCH (n) RETURN DISTINCT n.tenant AS t"


# --- the views' mechanism, deterministically -----------------------------------------------------------------
@pytest.mark.timeout(180)
def test_views_never_fork_the_persistent_engine_and_isolate_tenants(tmp_path):
    """A view build is plain reads of the shared graph and UNWIND writes into a private engine without
    persistence: the persistent engine never forks for it and never sees GRAPH.COPY (the old build forked on
    every copy), and the private engine never forks at all. Each tenant sees only its own nodes and edges."""
    from kgfactory.types import IngestRun

    with _graph(tmp_path) as (server, store, views):
        _write(store, "a1", "acme")
        _write(store, "b1", "globex", names=("cy", "dee", "eve"))
        store.record_run(IngestRun(id="run1"))
        forks = _info(server.sock, "stats")["total_forks"]
        acme, globex = _rows(views, "acme", TENANTS), _rows(views, "globex", TENANTS)
        assert _info(server.sock, "stats")["total_forks"] == forks, "a view build forked the persistent engine"
        assert not [k for k in _info(server.sock, "commandstats") if "copy" in k.lower()]
        assert acme == [["acme"]] and globex == [["globex"]]  # (the old copies also held the KGMeta counter)
        assert _rows(views, "acme", "MATCH (d:Document) RETURN d.id") == [["a1"]]
        assert _rows(views, "acme", "MATCH (e:Person) RETURN e.name ORDER BY e.name") == [["Ann"], ["Bob"]]
        # every edge between acme's nodes, nothing of globex, no bookkeeping (runs, revision counters)
        assert _rows(views, "acme", "MATCH ()-[r]->() RETURN type(r) AS t, count(r) ORDER BY t") == \
            [["CO_OCCURS", 1], ["HAS_CHUNK", 2], ["MENTIONS", 2], ["NEXT", 1]]
        assert _rows(views, "acme", "MATCH (n) WHERE n:IngestRun OR n:KGMeta RETURN count(n)") == [[0]]
        assert _rows(views, "globex", "MATCH (n:Entity) RETURN count(n)") == [[3]]
        assert _rows(views, "nobody", "UNWIND range(1, 3) AS x RETURN count(x)") == [[3]]  # an empty view works
        assert _rows(views, "nobody", TENANTS) == []
        assert _info(server.sock, "stats")["total_forks"] == forks
        engine = getattr(views, "_engine", None)
        assert engine is not None and engine.sock != server.sock, "views live in the persistent engine"
        assert _info(engine.sock, "persistence")["aof_enabled"] == 0
        assert _info(engine.sock, "stats")["total_forks"] == 0


@pytest.mark.timeout(180)
def test_views_are_rebuilt_only_when_their_tenant_changed(tmp_path):
    """Refresh cost follows the change: another tenant's writes do not rebuild a view; the tenant's own write or
    delete, or a write no tenant owns (an ontology change bumps 'revision_all'), does. A view a query still
    uses survives a rebuild until that query ends."""
    with _graph(tmp_path) as (server, store, views):
        _write(store, "a1", "acme")
        _write(store, "b1", "globex")
        assert _rows(views, "acme", "MATCH (d:Document) RETURN d.id") == [["a1"]]
        assert _rows(views, "globex", "MATCH (d:Document) RETURN d.id") == [["b1"]]
        built = views.builds
        _rows(views, "acme", TENANTS)
        _write(store, "b2", "globex")
        assert _rows(views, "acme", "MATCH (d:Document) RETURN d.id") == [["a1"]]
        assert views.builds == built, "globex's write rebuilt acme's view"
        assert _rows(views, "globex", "MATCH (d:Document) RETURN d.id ORDER BY d.id") == [["b1"], ["b2"]]
        assert views.builds == built + 1
        store.delete_document("a1")
        assert _rows(views, "acme", "MATCH (n) RETURN count(n)") == [[0]]
        assert views.builds == built + 2
        store.bump_revision()  # as an ontology change does
        _rows(views, "acme", TENANTS)
        _rows(views, "globex", TENANTS)
        assert views.builds == built + 4
        # a query in flight keeps its view; the rebuilt one replaces it for new queries
        held = views._acquire("globex")
        _write(store, "b3", "globex")
        assert _rows(views, "globex", "MATCH (d:Document) RETURN count(d)") == [[3]]
        build_db, _ = views._dbs()
        assert held.name in build_db.list_graphs()
        views._release(held)
        assert held.name not in build_db.list_graphs()


@pytest.mark.timeout(120)
def test_view_errors_are_typed(tmp_path):
    """Callers tell the query's fault from the engine's by class (issue 16), never by the message's words."""
    from kgfactory.errors import CypherQueryError, CypherTimeout, GraphUnavailableError

    with _graph(tmp_path) as (server, store, views):
        _write(store, "a1", "acme")
        with pytest.raises(CypherQueryError, match="query failed") as bad:
            views.run("MATCH (n RETURN n", {}, "acme", 5000, 10)
        assert not isinstance(bad.value, (CypherTimeout, GraphUnavailableError))
        with pytest.raises(CypherTimeout, match="timed out"):
            views.run("UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 3 RETURN count(x)", {}, "acme", 20, 10)
        with pytest.raises(CypherQueryError, match="write clauses"):
            views.run("CREATE (n:X)", {}, "acme", 5000, 10)


@pytest.mark.timeout(180)
def test_old_views_leave_the_shared_engine_and_views_are_bounded(tmp_path, monkeypatch):
    """Copies an older version kept in the persistent engine are deleted on first use; the private engine keeps
    at most MAX_VIEWS views, dropping the least recently used."""
    import kgfactory.graph.falkordb_views as V

    monkeypatch.setattr(V, "MAX_VIEWS", 2)
    with _graph(tmp_path) as (server, store, views):
        _write(store, "a1", "acme")
        store._db.select_graph("kgf__tenant_view__t_acme").query("CREATE (:Document {id: 'old', tenant: 'globex'})")
        for t in ("acme", "globex", "initech", "acme"):
            _rows(views, t, TENANTS)
        assert "kgf__tenant_view__t_acme" not in store.list_graphs()
        build_db, _ = views._dbs()
        assert sorted(build_db.list_graphs()) == sorted(v.name for v in views._views.values())
        assert sorted(views._views) == ["acme", "initech"]  # globex was the least recently used


# --- the load, bounded ---------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_analysts_and_a_churning_tenant_under_frequent_aof_rewrites(tmp_path):
    """Three analysts query their views while a fourth tenant ingests and deletes tiny documents (and its own
    analyst queries it, so its view is rebuilt again and again), with the persistent engine rewriting its AOF
    as often as it can. Every call returns within its deadline, and every answer holds only its tenant.
    (The issue saw the engine deadlock for good after ~40 s of this, once in 2 runs.)"""
    with _graph(tmp_path, call_timeout_s=20.0) as (server, store, views):
        for t in ("t1", "t2", "t3"):
            _write(store, f"{t}_doc", t)
        import redis

        r = redis.Redis(unix_socket_path=str(server.sock), socket_timeout=10)
        r.config_set("auto-aof-rewrite-min-size", 16 * 1024)
        r.config_set("auto-aof-rewrite-percentage", 1)
        rewrites0 = r.info("persistence").get("aof_rewrites", 0)
        stop = time.monotonic() + 20
        slowest: dict[str, float] = {}
        errors: list[str] = []
        counts: dict[str, int] = {}

        def timed(name, fn):
            t0 = time.monotonic()
            try:
                return fn()
            except Exception as e:  # recorded, asserted below
                errors.append(f"{name}: {type(e).__name__}: {e}")
            finally:
                slowest[name] = max(slowest.get(name, 0.0), time.monotonic() - t0)
                counts[name] = counts.get(name, 0) + 1

        def analyst(tenant):
            while time.monotonic() < stop:
                got = timed(tenant, lambda: _rows(views, tenant, TENANTS))
                if got is not None and got not in ([[tenant]], []):
                    errors.append(f"{tenant} saw {got}")

        def churn():
            i = 0
            while time.monotonic() < stop:
                timed("ingest", lambda: _write(store, f"busy_{i}", "busy"))
                timed("delete", lambda: store.delete_document(f"busy_{i}"))
                i += 1

        threads = [threading.Thread(target=analyst, args=(t,), daemon=True) for t in ("t1", "t2", "t3", "busy")]
        threads.append(threading.Thread(target=churn, daemon=True))
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=90)
        hung = [th.name for th in threads if th.is_alive()]
        assert not hung, f"graph calls still running 70 s after the load stopped: {slowest}"
        assert not errors, errors[:5]
        assert max(slowest.values()) < 20, slowest
        assert counts["ingest"] >= 3 and all(counts[t] >= 3 for t in ("t1", "t2", "t3", "busy")), counts
        rewrites = r.info("persistence").get("aof_rewrites", 0) - rewrites0
        print(f"calls {counts}, slowest {({k: round(v, 2) for k, v in slowest.items()})}, AOF rewrites {rewrites}, "
              f"view builds {getattr(views, 'builds', '?')}")
        assert rewrites > 0  # the persistence forks did happen
        assert not [k for k in r.info("commandstats") if "copy" in k.lower()]
        r.close()


# --- deadlines ------------------------------------------------------------------------------------------------
def _bounded(fn, seconds: float):
    """fn() in a daemon thread: its result or exception, or a test failure when it has not returned in time
    (so the code before the fix, which hung for good, fails here instead of hanging the test run)."""
    out: list = []

    def go():
        try:
            out.append((True, fn()))
        except BaseException as e:
            out.append((False, e))

    th = threading.Thread(target=go, daemon=True)
    th.start()
    th.join(seconds)
    if not out:
        pytest.fail(f"the call did not return within {seconds} s: it hangs")
    ok, value = out[0]
    if not ok:
        raise value
    return value


def _unavailable():
    from kgfactory import errors as E

    return getattr(E, "GraphUnavailableError", E.GraphStoreError)  # (not there before the fix)


@contextmanager
def _stopped(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(120)
def test_graph_call_on_a_stopped_engine_fails_within_its_deadline_and_recovers(tmp_path):
    unavailable = _unavailable()
    with _graph(tmp_path, call_timeout_s=1.0) as (server, store, views):
        _write(store, "a1", "acme")
        assert _rows(views, "acme", TENANTS)[0] == ["acme"]
        with _stopped(server.pid()):
            for call in (store.revision, lambda: store.list_documents("acme"), lambda: _rows(views, "acme", TENANTS),
                         lambda: _write(store, "a2", "acme")):
                t0 = time.monotonic()
                with pytest.raises(unavailable, match="did not answer within 1 s"):
                    _bounded(call, 10)
                assert time.monotonic() - t0 < 3
        assert store.revision() >= 1 and _rows(views, "acme", TENANTS) == [["acme"]]  # recovered
        assert store.get_document("a2") is None or store.get_document("a2").status != "complete"
        with _stopped(views._engine.pid()):  # the views engine stuck: the analyst gets 503, not a hang
            t0 = time.monotonic()
            with pytest.raises(unavailable):
                _bounded(lambda: _rows(views, "acme", TENANTS), 20)
            assert time.monotonic() - t0 < 5000 / 1000 + 2 + 3
        assert _rows(views, "acme", TENANTS) == [["acme"]]


@pytest.mark.timeout(120)
def test_a_dead_views_engine_is_replaced(tmp_path):
    """The views engine killed under a running server: one analyst call fails (503), the next one works."""
    with _graph(tmp_path) as (server, store, views):
        _write(store, "a1", "acme")
        assert _rows(views, "acme", TENANTS) == [["acme"]]
        first = views._engine.pid()
        os.kill(first, signal.SIGKILL)
        with pytest.raises(_unavailable()):
            _bounded(lambda: _rows(views, "acme", TENANTS), 20)
        assert _rows(views, "acme", TENANTS) == [["acme"]]
        assert views._engine.pid() not in (None, first)


@pytest.mark.timeout(300)
def test_api_answers_503_and_readyz_fails_while_the_engine_is_stuck(make_services):
    """A graph route answers 503 graph_unavailable and /readyz 503 within their bounds while the engine does
    not answer (old code: every graph call hung forever); both recover once it answers again."""
    from fastapi.testclient import TestClient

    from kgfactory.api import create_app

    svc = make_services(graph_call_timeout_s=2.0, api_open=True)
    (pid,) = _redis_serving(svc.settings.data_dir)
    with TestClient(create_app(services=svc)) as c:
        assert c.get("/readyz").status_code == 200
        assert c.get("/v1/documents").status_code == 200
        with _stopped(pid):
            t0 = time.monotonic()
            r = _bounded(lambda: c.get("/v1/documents"), 30)
            assert r.status_code == 503 and r.json()["error"]["type"] == "graph_unavailable", r.text
            assert time.monotonic() - t0 < 6
            r = _bounded(lambda: c.post("/v1/cypher", json={"query": "MATCH (n) RETURN count(n)"}), 30)
            assert r.status_code == 503, r.text
            t0 = time.monotonic()
            r = _bounded(lambda: c.get("/readyz"), 30)
            assert r.status_code == 503 and not r.json()["checks"]["graph"]["ok"], r.text
            assert time.monotonic() - t0 < 8
        assert c.get("/readyz").status_code == 200
        assert c.get("/v1/documents").status_code == 200
        assert c.post("/v1/cypher", json={"query": "MATCH (n) RETURN count(n)"}).status_code == 200


def _redis_serving(data_dir: Path) -> list[int]:
    """The redis-server processes whose command line (process title) names a socket in this data dir."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "redis-server" \
                    and str(data_dir) in (d / "cmdline").read_text(errors="replace"):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def _redis_child(parent: int) -> int | None:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if stat[stat.index("(") + 1:stat.rindex(")")] == "redis-server" and int(fields[1]) == parent \
                    and fields[0] not in "ZX":
                return int(d.name)
    return None


@pytest.mark.timeout(400)
def test_sigterm_of_kgf_serve_with_a_stuck_engine_ends_in_bounded_time(tmp_path):
    """SIGTERM of `kgf serve` while its engine does not answer and a request waits on it: the request gets its
    503, the server exits, and the stuck engine is killed after its grace period (old code: hung)."""
    data = tmp_path / "d"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KGF_DATA_DIR": str(data), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
           "KGF_GRAPH_CALL_TIMEOUT_S": "3", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kid = None
    try:
        wait_ready(proc, url)
        kid = _redis_child(proc.pid)
        assert kid
        os.kill(kid, signal.SIGSTOP)
        answers: list = []

        def ask():
            try:
                answers.append(httpx.get(url + "/v1/documents", timeout=60).status_code)
            except httpx.HTTPError as e:
                answers.append(type(e).__name__)

        waiting = threading.Thread(target=ask, daemon=True)
        waiting.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
        took = time.monotonic() - t0
        print(f"kgf serve exited {took:.1f} s after SIGTERM with its engine stopped")
        waiting.join(10)
        assert answers == [503], (answers, out[-3000:])
        assert took < 60, took
        gone = time.monotonic() + 5
        while Path(f"/proc/{kid}").exists() and _redis_child(proc.pid) == kid and time.monotonic() < gone:
            time.sleep(0.05)
        stat = Path(f"/proc/{kid}/stat").read_text() if Path(f"/proc/{kid}").exists() else ""
        assert not stat or stat[stat.rindex(")") + 2] in "ZX", f"the stuck engine {kid} outlived kgf serve"
        assert "did not shut down (it does not answer); killing it" in out, out[-3000:]
    finally:
        if kid and Path(f"/proc/{kid}").exists():
            os.kill(kid, signal.SIGCONT)
            os.kill(kid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
