"""Incremental refresh of the retriever's graph index: after ingests, deletes and replacements made through the
pipeline, the patched index must be the index a full load builds (compared by ids, not positions), rank every
sample question the same way, and keep the exact resident vectors in step. Another reader of the same store (a
replica that did not write) patches from the graph's change log too; it reloads whole only when the log does not
reach back or holds an ontology change."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kgfactory.retrieval.graph_index import GraphIndex
from kgfactory.retrieval.retriever import Retriever

SAMPLES = Path(__file__).resolve().parents[1] / "kgfactory" / "samples"
QUESTIONS = [q["question"] for q in json.loads((SAMPLES / "questions.json").read_text())]


def _as_ids(idx: GraphIndex) -> dict:
    """Everything a search reads from the index, keyed by ids so row order does not matter."""
    E = idx.entity_ids
    C = idx.chunk_ids
    men = idx.mentions.tocoo()
    subj = idx.subjects.tocoo()
    adj = idx.adjacency.tocoo()
    tr = idx.transition.tocoo()
    node = E + C
    return {
        "chunks": {c: (idx.chunk_doc[i], idx.chunk_tenant[i], tuple(idx.chunk_tags[i])) for i, c in enumerate(C)},
        "entities": {e: (idx.entity_names[i], idx.entity_labels[i], frozenset(idx.entity_aliases[i]),
                         idx.entity_tenant[i], idx.entity_source[i])
                     for i, e in enumerate(E)},
        "names": {k: sorted(E[p] for p in v) for k, v in idx.names.items()},
        "max_name_words": idx.max_name_words,
        "mentions": {(C[r], E[c]): round(float(w), 5) for r, c, w in zip(men.row, men.col, men.data)},
        "subjects": {(C[r], E[c]) for r, c, w in zip(subj.row, subj.col, subj.data) if w},
        "adjacency": {(E[r], E[c]): round(float(w), 4) for r, c, w in zip(adj.row, adj.col, adj.data)},
        "transition": {(node[r], node[c]): round(float(w), 6) for r, c, w in zip(tr.row, tr.col, tr.data)},
        "edge_types": {(E[a], E[b]): t for (a, b), t in idx.edge_types.items()},
        "typed": {E[a]: sorted((E[b], t) for b, t in lst) for a, lst in idx.typed_neighbours.items()},
        "df": {e: int(idx.entity_df[i]) for i, e in enumerate(E)},
    }


def _assert_same_as_full_load(svc) -> None:
    patched = svc.retriever.index()
    assert svc.retriever.last_refresh["kind"] == "incremental", svc.retriever.last_refresh
    full = GraphIndex.load(svc.graph)
    assert patched.revision == full.revision
    got, want = _as_ids(patched), _as_ids(full)
    for key in want:
        assert got[key] == want[key], f"{key} differs from a full load"
    assert len(want["adjacency"]) > 0 and len(want["mentions"]) > 0 and len(want["subjects"]) > 0


def _rankings(retriever: Retriever, mode: str) -> list[list[tuple[str, float]]]:
    return [[(c.id, round(c.score, 4)) for c in r.chunks]
            for r in retriever.search_many(QUESTIONS, mode=mode, top_k=5)]


def _assert_same_rankings(svc) -> None:
    fresh = Retriever(svc.graph, svc.vectors, svc.embedder, class_cues=svc.retriever.class_cues,
                      relation_cues=svc.retriever.relation_cues, vector_search=svc.retriever.vector_search,
                      incremental=False)
    for mode in ("graph", "hybrid", "vector"):
        assert _rankings(svc.retriever, mode) == _rankings(fresh, mode), mode


@pytest.fixture
def kb(make_services, tmp_path):
    """A KB holding three of the four sample files, its retriever's index (and resident vectors) warm."""
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES / "corpus", corpus)
    held_back = tmp_path / "later"
    held_back.mkdir()
    shutil.move(str(corpus / "people.txt"), held_back / "people.txt")
    svc = make_services(vector_search="exact")
    svc.pipeline.ingest([str(corpus)])
    svc.retriever.index()
    svc.retriever.exact_indexes(svc.retriever.index())
    assert svc.retriever.last_refresh["kind"] == "full"
    return svc, corpus, held_back


def test_ingest_is_patched_in(kb):
    svc, corpus, later = kb
    before = svc.retriever.index()
    svc.pipeline.ingest([str(later / "people.txt")])
    _assert_same_as_full_load(svc)
    r = svc.retriever.last_refresh
    assert r["chunks_added"] > 0 and r["entities_added"] > 0 and r["edges_read"] > 0
    assert before.n_chunks < svc.retriever.index().n_chunks
    assert svc.retriever._exact is not None and svc.retriever._exact.revision == svc.retriever.index().revision
    _assert_same_rankings(svc)


def test_delete_is_patched_in(kb):
    svc, corpus, _ = kb
    doc = next(d for d in svc.graph.list_documents() if d.source.endswith("helios.md"))
    report = svc.pipeline.delete(doc.id)
    assert report.found and report.chunks > 0
    _assert_same_as_full_load(svc)
    assert svc.retriever.last_refresh["entities_removed"] > 0  # entities only helios.md mentioned are gone
    idx = svc.retriever.index()
    assert doc.id not in idx.chunk_doc
    ex = svc.retriever.exact_indexes(idx)
    assert ex.chunks.ids == idx.chunk_ids and ex.chunk_present.all()
    assert len(ex.entities) == svc.vectors.count("entities")
    _assert_same_rankings(svc)


def test_replacement_and_several_changes_at_once(kb):
    """A changed file is written then its old version deleted; with a further ingest in between reads, the
    index catches up on all three revisions in one patch."""
    svc, corpus, later = kb
    helios = corpus / "helios.md"
    helios.write_text(helios.read_text().replace("Helios", "Heliotrope", 3) + "\n\nMaria Lopez visited Oslo.\n")
    svc.pipeline.ingest([str(helios)])
    svc.pipeline.ingest([str(later / "people.txt")])
    _assert_same_as_full_load(svc)
    assert svc.retriever.last_refresh["documents_written"] == 2
    assert svc.retriever.last_refresh["documents_deleted"] == 1
    _assert_same_rankings(svc)


def _replica(svc) -> Retriever:
    """A second reader over the same stores, as another `kgf serve` process holds: nobody tells it of writes."""
    r = Retriever(svc.graph, svc.vectors, svc.embedder, class_cues=svc.retriever.class_cues,
                  relation_cues=svc.retriever.relation_cues, vector_search="exact")
    r.exact_indexes(r.index())
    return r


def test_a_replica_patches_from_the_change_log(kb):
    svc, corpus, later = kb
    rep = _replica(svc)
    held = rep.index().revision
    svc.pipeline.ingest([str(later / "people.txt")])
    svc.pipeline.delete(svc.graph.documents_by_source(str(corpus / "helios.md"), "default")[0].id)
    status = rep.replica_status()
    assert status["revision"] == held and status["lag_revisions"] == 2 and status["lag_seconds"] >= 0
    assert rep.catch_up() == svc.graph.revision()
    assert rep.last_refresh["catch_up"] == "patch" and rep.last_refresh["changes"] == 2
    assert rep.last_refresh["documents_written"] == 1 and rep.last_refresh["documents_deleted"] == 1
    status = rep.replica_status()
    assert status["lag_revisions"] == 0 and status["lag_seconds"] == 0 and status["last_catch_up"] == "patch"
    got, want = _as_ids(rep.index()), _as_ids(GraphIndex.load(svc.graph))
    for key in want:
        assert got[key] == want[key], f"{key} differs from a full load"
    assert rep._upkeep._exact is not None and rep._upkeep._exact.revision == rep.index().revision
    fresh = Retriever(svc.graph, svc.vectors, svc.embedder, class_cues=svc.retriever.class_cues,
                      relation_cues=svc.retriever.relation_cues, vector_search="exact", incremental=False)
    assert _rankings(rep, "hybrid") == _rankings(fresh, "hybrid")


def test_a_replica_past_the_log_window_reloads_and_says_why(kb):
    svc, corpus, later = kb
    rep = _replica(svc)
    svc.graph.change_retention = 1
    svc.pipeline.ingest([str(later / "people.txt")])
    svc.pipeline.delete(svc.graph.documents_by_source(str(corpus / "helios.md"), "default")[0].id)
    rep.catch_up()
    assert rep.last_refresh["catch_up"] == "reload" and "change log" in rep.last_refresh["reason"]
    assert rep.replica_status()["last_catch_up"] == "reload"
    assert _as_ids(rep.index()) == _as_ids(GraphIndex.load(svc.graph))


def test_an_ontology_change_reloads_whole(kb):
    svc, _, later = kb
    svc.graph.bump_revision()  # an ontology change or RDF import: the log has no document list for it
    svc.pipeline.ingest([str(later / "people.txt")])
    idx = svc.retriever.index()
    assert svc.retriever.last_refresh["kind"] == "full" and "ontology" in svc.retriever.last_refresh["reason"]
    assert idx.revision == svc.graph.revision()
    assert _as_ids(idx) == _as_ids(GraphIndex.load(svc.graph))


def test_off_switch_reloads_whole(kb):
    svc, _, later = kb
    svc.retriever.incremental = False
    svc.pipeline.ingest([str(later / "people.txt")])
    svc.retriever.index()
    assert svc.retriever.last_refresh["kind"] == "full"


def test_refresh_copies_never_mutate_the_old_index(kb):
    """A search that took the old index before a refresh must keep seeing the old graph."""
    svc, corpus, later = kb
    old = svc.retriever.index()
    snapshot = _as_ids(old)
    svc.pipeline.ingest([str(later / "people.txt")])
    doc = next(d for d in svc.graph.list_documents() if d.source.endswith("places.html"))
    svc.pipeline.delete(doc.id)
    assert svc.retriever.index() is not old
    assert _as_ids(old) == snapshot
    assert np.isfinite(old.ppr(np.ones(old.n_entities))).all()
