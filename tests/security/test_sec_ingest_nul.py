"""Issue 14, defect 9: text holding NUL (or other control characters, or unpaired surrogates) is cleaned before
anything is written, on every input path; and a document whose write fails midway is rolled back at once, not
left 'pending'. Real engines throughout; store failures are injected around the real Milvus store."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api_support import build, h, make_keys, wait_job
from kgfactory.errors import VectorStoreError

pytestmark = pytest.mark.timeout(300)

BAD = "Helios\u0000Robotics was founded by Ada\x1b[31m Park in Oslo.\x0cHelios Robotics builds robots\x07."


def _stored_texts(svc, tenant: str = "default") -> list[str]:
    rows = svc.graph.query("MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) WHERE d.tenant = $t "
                           "RETURN d.title AS title, c.text AS text", {"t": tenant})
    return [r["title"] for r in rows] + [r["text"] for r in rows]


def _assert_clean_and_complete(svc, tenant: str = "default") -> None:
    docs = svc.graph.list_documents(tenant=tenant)
    assert docs and {d.status for d in docs} == {"complete"}, docs
    texts = _stored_texts(svc, tenant)
    assert texts and not any(ch in t for t in texts for ch in "\x00\x1b\x07\x0c"), texts
    assert any("Helios Robotics" in t for t in texts)  # NUL became a space: the words stay apart


def test_texts_with_nul_through_the_api_are_cleaned_not_half_written(tmp_path, embedder, extractor):
    from kgfactory.api import create_app

    svc = build(tmp_path / "data", embedder, extractor)
    keys = make_keys(svc.settings.data_dir)
    with TestClient(create_app(services=svc)) as c:
        r = c.post("/v1/documents/texts", headers=h(keys["a_admin"]),
                   json={"texts": [{"title": "Helios\u0000 notes", "text": BAD, "metadata": {"k": "v\u0000"}}]})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["id"], keys["a_admin"])
        assert job["state"] == "succeeded" and job["errors"] == [], job
        assert job["run"]["documents_added"] == 1
        assert c.get("/v1/documents?status=pending", headers=h(keys["a_admin"])).json() == []
        doc = c.get("/v1/documents", headers=h(keys["a_admin"])).json()[0]
        body = c.get(f"/v1/documents/{doc['id']}", headers=h(keys["a_admin"])).json()
        assert body["title"] == "Helios  notes" and "\x00" not in json.dumps(body["chunks"])
    _assert_clean_and_complete(svc, "acme")
    svc.close()


def test_every_file_path_is_cleaned(make_services, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    # a NUL past the binary sniff window (8 KiB) passes as text; so does a JSON \\u0000 escape
    (d / "long.txt").write_bytes(("Helios Robotics builds robots. " * 300).encode() + BAD.encode())
    (d / "rec.jsonl").write_text(json.dumps({"title": "T\u0000", "text": BAD}) + "\n" +
                                 json.dumps({"title": "S", "text": "Ada Park \ud800 founded Helios."}) + "\n")
    (d / "rec.json").write_text(json.dumps([{"title": "J", "text": BAD}]))
    (d / "page.md").write_bytes(b"# Helios\n\n" + ("Helios Robotics builds robots. " * 300).encode() + b"Ada\x00Park")
    svc = make_services()
    run = svc.pipeline.ingest([str(d)])
    assert run.errors == [] and run.documents_added == 5, run.errors
    _assert_clean_and_complete(svc)
    assert not any("\ud800" in t for t in _stored_texts(svc))


def test_sdk_local_texts_with_nul_and_surrogates(tmp_path, embedder, extractor):
    """NUL is cleaned as on the server; an unpaired surrogate is refused before anything is staged, naming the
    field (the server's 422), where it used to raise UnicodeEncodeError from the staging code."""
    from kgfactory.sdk import ValidationError
    from kgfactory.sdk.local import KnowledgeBase

    svc = build(tmp_path / "data", embedder, extractor)
    with KnowledgeBase(svc) as kb:
        res = kb.ingest(texts=[{"title": "Helios", "text": BAD}])
        assert res.ok and res.errors == [] and res.documents_added == 1, res
        _assert_clean_and_complete(svc)
        for bad, field in ([{"title": "Odd\ud800", "text": "x"}], "title"), (["Ada \udc00 Park."], "title"), \
                          ([("T", "Ada \udc00 Park.")], "text"), ([{"text": "x", "metadata": {"k": "\ud800"}}], "metadata"):
            with pytest.raises(ValidationError, match=rf"texts\[0\]\.{field}: .*surrogate"):
                kb.ingest(texts=bad)
        assert len(svc.graph.list_documents()) == 1
        staged = [p.name for p in (svc.settings.data_dir / "uploads" / "default").iterdir()]
        assert len(staged) == 1 and staged[0].startswith("Helios-"), staged  # nothing refused was staged


class _FailsAfterGraph:
    """The real Milvus store, but entity vectors fail to write: the graph and the chunk vectors of the group are
    already written when it fails, as when a store dies midway."""

    def __init__(self, inner):
        self.inner = inner

    def upsert_entities(self, *a, **kw):
        raise VectorStoreError("injected failure writing entity vectors")

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_write_failing_midway_is_rolled_back_at_once(make_services, tmp_path, sample_dir):
    svc = make_services()
    real = svc.pipeline.vectors
    svc.pipeline.vectors = _FailsAfterGraph(real)
    run = svc.pipeline.ingest([str(sample_dir)])
    assert run.documents_added == 0 and len(run.errors) == 6
    assert all("not stored" in e.reason and "pending" not in e.reason for e in run.errors)
    # nothing of those documents is left: no pending document, no chunk, no vector, no entity
    assert svc.graph.list_documents() == []
    g = svc.graph.stats()
    assert g["Document"] == g["Chunk"] == g["Entity"] == 0 and not any("pending" in k for k in g), g
    assert real.count("chunks", exact=True) == 0 and real.count("entities", exact=True) == 0
    svc.pipeline.vectors = real
    rerun = svc.pipeline.ingest([str(sample_dir)])
    assert rerun.errors == [] and rerun.documents_added == 6
    assert {d.status for d in svc.graph.list_documents()} == {"complete"}
    assert real.count("entities", exact=True) == svc.graph.stats()["Entity"] > 0
