"""Overlapping ingest stages (ingest/stages.py) on the real engines: the threaded run writes exactly what the
serial run writes, a failing stage stops the run cleanly naming the document, and groups in flight are bounded."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from kgfactory.errors import ExtractionError
from kgfactory.ingest.spacy_extractor import SpacyExtractor

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def corpus(tmp_path, sample_dir):
    dst = tmp_path / "corpus"
    shutil.copytree(sample_dir, dst)
    return dst


def _graph(svc) -> dict:
    """Everything an ingest wrote, as sets of ids and edges (both stores)."""
    q = svc.graph.query
    return {
        "documents": sorted((r["id"], r["status"], r["chunks"], r["entities"]) for r in q(
            "MATCH (d:Document) RETURN d.id AS id, d.status AS status, d.chunk_count AS chunks, "
            "d.entity_count AS entities")),
        "chunks": sorted(r["id"] for r in q("MATCH (c:Chunk) RETURN c.id AS id")),
        "entities": sorted((r["id"], r["name"], r["label"], tuple(sorted(r["aliases"] or []))) for r in q(
            "MATCH (e:Entity) RETURN e.id AS id, e.name AS name, e.label AS label, e.aliases AS aliases")),
        "mentions": sorted((r["c"], r["e"], r["n"], bool(r["s"])) for r in q(
            "MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity) RETURN c.id AS c, e.id AS e, m.count AS n, m.subject AS s")),
        "relations": sorted((r["t"], r["a"], r["b"], tuple(sorted(r["cs"]))) for r in q(
            "MATCH (a:Entity)-[x]->(b:Entity) RETURN type(x) AS t, a.id AS a, b.id AS b, x.chunk_ids AS cs")),
        "structure": sorted((r["t"], r["a"], r["b"]) for r in q(
            "MATCH (a)-[x]->(b) WHERE type(x) IN ['HAS_CHUNK', 'NEXT'] RETURN type(x) AS t, a.id AS a, b.id AS b")),
        "vector_chunks": sorted(svc.vectors.export_vectors("chunks")[0]),
        "vector_entities": sorted(svc.vectors.export_vectors("entities")[0]),
    }


def _run_counts(run) -> tuple:
    return (run.documents_added, run.documents_replaced, run.documents_unchanged, run.chunks, run.entities,
            run.relations, len(run.errors))


def test_threaded_ingest_writes_exactly_what_serial_writes(make_services, corpus, tmp_path):
    out = {}
    for mode in ("serial", "threaded"):
        svc = make_services(tmp_path / mode)
        svc.pipeline.mode, svc.pipeline.group_size, svc.pipeline.inflight_groups = mode, 2, 3  # several groups
        first = svc.pipeline.ingest([str(corpus)])
        if mode == "threaded":  # the stages did overlap: a group was prepared while an earlier one was written
            assert svc.pipeline.stage_stats is not None and svc.pipeline.stage_stats.peak_inflight == 3
        people = corpus / "people.txt"
        original = people.read_text()
        people.write_text(original.replace("Priya Raman", "Lena Vogt"))  # a replaced document on the 2nd run
        second = svc.pipeline.ingest([str(corpus)])
        people.write_text(original)
        out[mode] = (_run_counts(first), _run_counts(second), _graph(svc))
    serial, threaded = out["serial"], out["threaded"]
    assert serial[0] == threaded[0] and serial[1] == threaded[1]
    assert serial[1][:3] == (0, 1, 5)
    g = serial[2]
    assert g["entities"] and g["relations"] and g["mentions"]
    assert [e[0] for e in g["entities"]] == g["vector_entities"] and g["chunks"] == g["vector_chunks"]
    for key in g:
        assert threaded[2][key] == g[key], key


class PoisonedExtractor(SpacyExtractor):
    """The real spaCy extractor, failing on any chunk that holds the marker (a bug on one input)."""

    MARKER = "Zorblax"

    def _analyse_one(self, doc, tenant):
        if self.MARKER in doc.text:  # doc: spaCy's reading of one chunk
            raise ValueError("cannot read this chunk")
        return super()._analyse_one(doc, tenant)


@pytest.mark.parametrize("mode", ["serial", "threaded"])
def test_a_failing_stage_stops_the_run_naming_the_document(make_services, corpus, extractor, mode):
    (corpus / "poison.txt").write_text("The Zorblax engine was built by Marie Dubois in Lyon.")
    svc = make_services()
    poisoned = PoisonedExtractor(extractor.ontology)
    poisoned._nlp, poisoned.pipeline_name, poisoned._has_parser = extractor._load(), extractor.pipeline_name, \
        extractor._has_parser
    svc.extractor = svc.pipeline.extractor = poisoned
    # groups of 4: poison.txt is last in the second group (helios, news#0-2 | people, places, poison), so the
    # group's error has to be narrowed to it
    svc.pipeline.mode, svc.pipeline.group_size = mode, 4
    with pytest.raises(ExtractionError) as ei:
        svc.pipeline.ingest([str(corpus)])
    assert "poison.txt" in str(ei.value) and "cannot read this chunk" in str(ei.value)
    assert not [t for t in threading.enumerate() if t.name.startswith("kgf-ingest")]
    g = _graph(svc)
    docs = svc.graph.list_documents()
    assert all(d.status == "complete" for d in docs), docs
    assert not any("poison" in d.source for d in docs)
    assert g["chunks"] == g["vector_chunks"]
    assert [e[0] for e in g["entities"]] == g["vector_entities"]  # no orphan vectors, no entity without one
    orphans = svc.graph.query("MATCH (e:Entity) WHERE NOT ()-[:MENTIONS]->(e) RETURN count(e) AS n")[0]["n"]
    assert orphans == 0
    # the run can be repeated once the document is fixed, and then stores everything
    (corpus / "poison.txt").write_text("The engine was built by Marie Dubois in Lyon.")
    run = svc.pipeline.ingest([str(corpus)])
    assert run.errors == [] and len(svc.graph.list_documents()) == 7


class CountingExtractor(SpacyExtractor):
    """The real extractor, counting groups whose extraction began (the first thing a group's preparation does
    that costs anything)."""

    started = 0
    written = 0
    peak = 0

    def extract(self, chunks, tenant="default"):
        type(self).started += 1
        type(self).peak = max(type(self).peak, type(self).started - type(self).written)
        return super().extract(chunks, tenant)


class SlowListener:
    """A listener that takes its time: writes are the slow stage, so preparation would run ahead unbounded."""

    def documents_written(self, docs, chunks, extraction):
        time.sleep(0.4)
        CountingExtractor.written += 1

    def document_deleted(self, doc_id):
        pass


def test_groups_in_flight_never_exceed_the_bound(make_services, corpus, extractor):
    svc = make_services()
    counting = CountingExtractor(extractor.ontology)
    counting._nlp, counting.pipeline_name, counting._has_parser = extractor._load(), extractor.pipeline_name, \
        extractor._has_parser
    svc.extractor = svc.pipeline.extractor = counting
    svc.pipeline.listeners.append(SlowListener())
    svc.pipeline.mode, svc.pipeline.group_size, svc.pipeline.inflight_groups = "threaded", 1, 2
    run = svc.pipeline.ingest([str(corpus)])
    assert run.documents_added == 6 and CountingExtractor.written == 6
    # a group's extraction starts only when fewer than 2 groups are between admission and written; and the
    # stages did overlap (a second group was being prepared while the first was written)
    assert CountingExtractor.peak == 2
    assert svc.pipeline.stage_stats.peak_inflight == 2


def test_without_noun_phrases_only_entities_and_sentences_run(ontology, sample_dir):
    from kgfactory.ingest.chunker import Chunker
    from kgfactory.ingest.parsers import iter_documents
    from kgfactory.types import FileError

    ex = SpacyExtractor(ontology, noun_phrases=False)
    nlp = ex._load()
    assert set(nlp.pipe_names) == {"senter", "entity_ruler", "ner"} and ex.name.endswith("+ruler+senter")
    docs = [d for d in iter_documents([str(sample_dir)]) if not isinstance(d, FileError)]
    chunks = [c for d in docs for c in Chunker().split(d)]
    x = ex.extract(chunks)
    names = {e.id: e.name for e in x.entities}
    assert {e.source for e in x.entities} <= {"vocabulary", "ner"}  # no noun-phrase candidates
    assert ("worksFor", "Tomas Berg", "Helios Robotics") in {(r.type, names[r.source_id], names[r.target_id])
                                                            for r in x.relations}
    assert any(r.type == "CO_OCCURS" for r in x.relations)


def _pooled_extractor(svc, processes: int = 1) -> SpacyExtractor:
    """A real spaCy extractor with `processes` worker processes, already up (a long run's state)."""
    ext = SpacyExtractor(svc.extractor.ontology, processes=processes)
    svc.extractor = svc.pipeline.extractor = ext
    svc.pipeline.run_resources = [ext]
    assert ext._pool is not None
    ext._pool._start()
    for f in ext._pool._ready:
        assert f.result(timeout=120) is True
    return ext


def _alive(pids: list[int]) -> list[int]:
    import psutil

    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_spacy_worker_processes_write_exactly_what_in_thread_writes(make_services, corpus, tmp_path):
    """KGF_EXTRACT_PROCESSES: the analyses come from worker processes (counted), the stores end identical to the
    in-thread run, and the workers are gone when the run ends."""
    ref = make_services(tmp_path / "in-thread")
    ref.pipeline.group_size = 2
    ref_run = ref.pipeline.ingest([str(corpus)])
    svc = make_services(tmp_path / "workers")
    svc.pipeline.group_size = 2
    ext = _pooled_extractor(svc, processes=2)
    pids = ext._pool.workers()
    assert pids and _alive(pids)
    seen = []
    svc.pipeline.listeners.append(type("L", (), {
        "documents_written": lambda self, d, c, x: seen.append(ext._pool.remote),
        "document_deleted": lambda self, d: None})())
    run = svc.pipeline.ingest([str(corpus)])
    assert seen and seen[-1] == run.chunks  # every chunk was analysed in a worker
    assert _run_counts(run) == _run_counts(ref_run)
    assert _graph(svc) == _graph(ref)
    time.sleep(0.5)
    assert ext._pool._pool is None and not _alive(pids)  # released at the run's end


def test_a_killed_spacy_worker_leaves_the_run_exact(make_services, corpus, tmp_path, caplog):
    """A worker SIGKILLed after the first group: that batch and the rest go in-thread, with a warning; the stores
    end exactly as an in-thread run leaves them."""
    import os
    import signal

    ref = make_services(tmp_path / "in-thread")
    ref.pipeline.group_size = 2
    ref.pipeline.ingest([str(corpus)])
    svc = make_services(tmp_path / "killed")
    svc.pipeline.group_size, svc.pipeline.mode = 2, "serial"
    ext = _pooled_extractor(svc)
    pids = ext._pool.workers()
    killed = []

    class Killer:
        def documents_written(self, docs, chunks, extraction):
            if not killed:
                for p in pids:
                    os.kill(p, signal.SIGKILL)
                killed.extend(pids)

        def document_deleted(self, doc_id):
            pass

    svc.pipeline.listeners.append(Killer())
    with caplog.at_level("WARNING", logger="kgfactory.ingest.spacy_process"):
        run = svc.pipeline.ingest([str(corpus)])
    assert killed and not run.errors
    assert any("worker process died" in r.getMessage() for r in caplog.records)
    assert _graph(svc) == _graph(ref)
