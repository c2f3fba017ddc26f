"""Helpers for the API tests: real Services over a temp data dir sharing the session's loaded models,
keys for two tenants, and a live uvicorn on loopback."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

SAMPLE_TEXT_B = ("Globex Corporation is headquartered in Springfield. Hank Scorpio founded Globex Corporation "
                 "and works for it as its chief executive. Globex builds secret doomsday devices.")


def build(tmp: Path, embedder, extractor, **kw):
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    s = Settings(data_dir=tmp, **kw)
    svc = build_services(s)
    svc.embedder = svc.pipeline.embedder = svc.retriever.embedder = embedder
    if hasattr(svc.answerer, "embedder"):
        svc.answerer.embedder = embedder
    if svc.extractor is not None:
        svc.extractor = svc.pipeline.extractor = extractor
    return svc


def make_keys(data_dir: Path) -> dict[str, str]:
    from kgfactory.api.keys import KeyStore, keystore_path

    ks = KeyStore(keystore_path(data_dir))
    out = {}
    for name, tenant, roles in [("a_admin", "acme", ["admin"]), ("a_reader", "acme", ["reader"]),
                                ("a_analyst", "acme", ["analyst"]), ("a_ingester", "acme", ["ingester"]),
                                ("b_admin", "globex", ["admin"])]:
        out[name], _ = ks.create(name, tenant, roles)
    revoked, rec = ks.create("revoked", "acme", ["admin"])
    ks.revoke(rec["id"])
    out["revoked"] = revoked
    ks.close()
    return out


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def wait_job(client, job_id: str, key: str, timeout: float = 180.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        j = client.get(f"/v1/jobs/{job_id}", headers=h(key)).json()
        if j["state"] in ("succeeded", "failed"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a thread on 127.0.0.1 serving an app; stop() shuts it down cleanly."""

    def __init__(self, app, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        end = time.monotonic() + 120
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class RdflibStandIn:
    """rdflib's SPARQL engine over one named graph per tenant, with the Services.rdf interface
    (query(sparql, tenant=...) -> .kind, .serialize(fmt) -> (content, media type)). The API's own tests use the
    real RDF view; tests/test_sdk_client.py uses this for a fixed dataset."""

    MEDIA = {"json": "application/sparql-results+json", "xml": "application/sparql-results+xml", "csv": "text/csv",
             "turtle": "text/turtle", "ntriples": "application/n-triples"}

    def __init__(self, triples_by_tenant: dict[str, list[tuple[str, str, str]]]):
        import rdflib

        self.ds = rdflib.Dataset()
        for tenant, triples in triples_by_tenant.items():
            g = self.ds.graph(rdflib.URIRef(f"urn:kgf:tenant:{tenant}"))
            for s, p, o in triples:
                g.add((rdflib.URIRef(s), rdflib.URIRef(p), rdflib.Literal(o)))

    def query(self, sparql, *, tenant=None, timeout_s=10.0, max_rows=10000, default_graph_uris=(),
              named_graph_uris=()):
        import rdflib
        from kgfactory.errors import KGFError

        if default_graph_uris or named_graph_uris:  # the RDF view's dataset rules are tested on the real view
            raise KGFError("the stand-in serves the tenant's graph only")

        if any(w in sparql.upper() for w in ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP")):
            raise KGFError("SPARQL Update is not allowed")
        res = self.ds.graph(rdflib.URIRef(f"urn:kgf:tenant:{tenant}")).query(sparql)
        media = self.MEDIA

        class R:
            kind = res.type.lower()

            def serialize(self, fmt):
                if fmt in ("turtle", "ntriples"):
                    return res.graph.serialize(format="nt" if fmt == "ntriples" else "turtle"), media[fmt]
                return res.serialize(format=fmt).decode(), media[fmt]

        return R()


def wait_ready(proc, url: str, timeout: float = 240.0) -> None:
    """Poll /readyz of a `kgf serve` child (stdout piped, text) until 200; when it dies or is too slow, fail with
    the end of its output (killing it first if it still runs)."""
    import httpx

    end = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            if proc.poll() is None:
                proc.kill()
            out = proc.communicate(timeout=30)[0] or ""
            raise AssertionError(f"kgf serve did not get ready: {out[-3000:]}")
        time.sleep(0.5)


def stop_gracefully(*procs, timeout: float = 60.0) -> None:
    """SIGTERM every `kgf serve` child still running, then wait for each; one that outlives `timeout` is killed."""
    import signal
    import subprocess

    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
