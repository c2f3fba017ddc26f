"""End-to-end ingest on the real engines: lifecycle, provenance, bad input, crash repair."""
from __future__ import annotations

import json
import shutil

import pytest

from kgfactory.errors import VectorStoreError


def _counts(svc) -> dict:
    g = svc.graph.stats()
    return {"documents": g.get("Document", 0), "chunks": g.get("Chunk", 0), "entities": g.get("Entity", 0),
            "vector_chunks": svc.vectors.count("chunks"), "vector_entities": svc.vectors.count("entities"),
            "relations": {k: v for k, v in g.items() if k not in ("Document", "Chunk", "Entity")}}


def _orphans(svc) -> int:
    rows = svc.graph.query("MATCH (e:Entity) OPTIONAL MATCH (c:Chunk)-[m:MENTIONS]->(e) "
                           "WITH e, count(m) AS n WHERE n = 0 RETURN count(e) AS n")
    return rows[0]["n"]


@pytest.fixture
def corpus(tmp_path, sample_dir):
    dst = tmp_path / "corpus"
    shutil.copytree(sample_dir, dst)
    return dst


def test_sample_ingest_fills_both_stores_consistently(make_services, corpus):
    svc = make_services()
    run = svc.pipeline.ingest([str(corpus)], tags=["sample"])
    assert run.errors == []
    assert run.documents_added == 6  # md, txt, html and three JSONL records
    c = _counts(svc)
    assert c["documents"] == 6
    assert c["chunks"] == c["vector_chunks"] == run.chunks > 0
    assert c["entities"] == c["vector_entities"] > 10
    assert c["relations"]["MENTIONS"] >= c["entities"]
    assert c["relations"]["CO_OCCURS"] > 0
    assert _orphans(svc) == 0
    assert all(d.status == "complete" for d in svc.graph.list_documents())


def test_vocabulary_entities_are_typed_with_superclasses(make_services, corpus):
    svc = make_services()
    svc.pipeline.ingest([str(corpus)])
    rows = svc.graph.query("MATCH (e:Entity {name: 'NVIDIA'}) RETURN e.label AS label, labels(e) AS labels")
    assert rows and rows[0]["label"] == "Company"
    assert {"Entity", "Company", "Organization"} <= set(rows[0]["labels"])
    # every entity has an ontology class
    classes = set(svc.ontology.entity_labels())
    assert {r["label"] for r in svc.graph.query("MATCH (e:Entity) RETURN DISTINCT e.label AS label")} <= classes


def test_typed_relations_respect_domain_and_range(make_services, corpus):
    svc = make_services()
    svc.pipeline.ingest([str(corpus)])
    typed = svc.graph.query(
        "MATCH (a:Entity)-[r]->(b:Entity) WHERE NOT type(r) IN ['CO_OCCURS'] "
        "RETURN type(r) AS type, a.name AS a, a.label AS ca, b.name AS b, b.label AS cb, r.chunk_ids AS chunks")
    assert typed, "the sample states several typed facts (works for, founded, headquartered in)"
    for r in typed:
        assert svc.ontology.allows(r["type"], r["ca"], r["cb"]), r
        assert r["chunks"], "every fact carries the chunks it came from"
    assert any(r["type"] == "worksFor" and r["a"] == "Tomas Berg" and r["b"] == "Helios Robotics" for r in typed), typed


def test_reingest_unchanged_is_a_no_op(make_services, corpus):
    svc = make_services()
    svc.pipeline.ingest([str(corpus)])
    before = _counts(svc)
    run = svc.pipeline.ingest([str(corpus)])
    assert (run.documents_added, run.documents_unchanged, run.chunks) == (0, 6, 0)
    assert _counts(svc) == before


def test_changed_document_replaces_what_it_contributed(make_services, corpus):
    svc = make_services()
    svc.pipeline.ingest([str(corpus)])
    old_ids = {d.id for d in svc.graph.list_documents()}
    people = corpus / "people.txt"
    people.write_text(people.read_text().replace("Priya Raman", "Lena Vogt"))
    run = svc.pipeline.ingest([str(corpus)])
    assert (run.documents_added, run.documents_replaced, run.documents_unchanged) == (0, 1, 5)
    docs = svc.graph.list_documents()
    assert len(docs) == 6 and len({d.id for d in docs} - old_ids) == 1
    names = {r["n"] for r in svc.graph.query("MATCH (e:Entity) RETURN e.name AS n")}
    assert "Lena Vogt" in names
    # Priya Raman is still mentioned by the JSONL record about the summit, so she stays
    assert "Priya Raman" in names
    c = _counts(svc)
    assert c["chunks"] == c["vector_chunks"] and c["entities"] == c["vector_entities"]
    assert _orphans(svc) == 0


def test_delete_removes_everything_it_contributed(make_services, corpus):
    svc = make_services()
    svc.pipeline.ingest([str(corpus)])
    docs = svc.graph.list_documents()
    first = docs[0].id
    rep = svc.pipeline.delete(first)
    assert rep.found and rep.chunks > 0
    assert svc.graph.get_document(first) is None
    assert svc.vectors.chunk_ids_for_document(first) == []
    assert _orphans(svc) == 0
    for d in docs[1:]:
        svc.pipeline.delete(d.id)
    c = _counts(svc)
    assert c == {"documents": 0, "chunks": 0, "entities": 0, "vector_chunks": 0, "vector_entities": 0, "relations": {}}
    assert not svc.pipeline.delete("doc_missing").found


def test_batch_goes_on_past_bad_files(make_services, tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "good.txt").write_text("Marie Dubois founded Helios Robotics in Lyon.")
    (d / "empty.txt").write_text("   \n")
    (d / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (d / "latin1.md").write_bytes("Caf\xe9 au lait".encode("latin-1"))
    (d / "bad.jsonl").write_text(json.dumps({"title": "ok", "text": "Tomas Berg works for NVIDIA."}) + "\n{not json\n")
    svc = make_services()
    run = svc.pipeline.ingest([str(d), str(tmp_path / "missing.txt")])
    assert run.documents_added == 2
    by_source = {e.source.rsplit("/", 1)[-1]: e.reason for e in run.errors}
    assert set(by_source) == {"empty.txt", "binary.txt", "latin1.md", "bad.jsonl:2", "missing.txt"}, by_source
    assert "byte" in by_source["latin1.md"]
    assert _counts(svc)["documents"] == 2


class _Down:
    """Fault injection around the real Milvus store: it is down, so chunk writes fail and so does the
    roll-back's delete, leaving the documents half-written as a crash would."""

    def __init__(self, inner):
        self.inner = inner

    def upsert_chunks(self, *a, **kw):
        raise VectorStoreError("injected failure")

    def delete_document(self, *a, **kw):
        raise VectorStoreError("injected failure")

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_half_written_documents_are_repaired_by_a_rerun(make_services, corpus, tmp_path):
    clean = make_services(tmp_path / "clean")
    clean.pipeline.ingest([str(corpus)])
    expected = _counts(clean)

    svc = make_services(tmp_path / "crashy")
    real = svc.pipeline.vectors
    svc.pipeline.vectors = _Down(real)
    run = svc.pipeline.ingest([str(corpus)])
    assert len(run.errors) == 6 and all("not stored" in e.reason and "re-run" in e.reason for e in run.errors)
    assert {d.status for d in svc.graph.list_documents()} <= {"pending", "deleting"}
    svc.pipeline.vectors = real
    rerun = svc.pipeline.ingest([str(corpus)])
    assert rerun.errors == [] and rerun.documents_added == 6
    assert _counts(svc) == expected
    assert {d.status for d in svc.graph.list_documents()} == {"complete"}


def test_runs_are_recorded_with_versions(make_services, corpus):
    svc = make_services()
    run = svc.pipeline.ingest([str(corpus)])
    rec = svc.graph.list_runs(1)[0]
    assert rec.id == run.id
    assert rec.embed_model.endswith("@53aa5117")
    assert rec.ontology_version == svc.ontology.version
    assert rec.extractor.startswith("spacy:")
    assert set(rec.timings) == {"parse", "chunk", "embed", "extract", "write", "embed_chunks", "embed_entities",
                                "write_graph", "write_vectors"}


def test_vector_only_ingest_writes_no_entities(make_services, corpus):
    svc = make_services(extract=False)
    run = svc.pipeline.ingest([str(corpus)])
    c = _counts(svc)
    assert run.documents_added == 6 and c["entities"] == 0 and c["vector_entities"] == 0
    assert c["chunks"] == c["vector_chunks"] > 0
