"""Retrieval on real engines: multi-hop through the graph, citations into the source, delete, bad input."""
from __future__ import annotations

import json

import pytest

from kgfactory.errors import RetrievalError
from kgfactory.ingest.parsers import parse_file

# A two-hop question: the question names Tomas Berg; the answer (Lyon) sits in the passage about his employer,
# which shares no name with the question. One distractor is about Tomas Berg; two share the question's words
# (company, headquartered, country, works for) but none of its entities: dense retrieval ranks them higher.
TWO_HOP = [
    {"title": "Berg", "text": "Tomas Berg works for Helios Robotics as head of perception."},
    {"title": "Helios", "text": "Helios Robotics is headquartered in Lyon."},
    {"title": "Lyon", "text": "Lyon is a city on the Rhone river, located in France."},
    {"title": "Berg talk", "text": "Tomas Berg gave a talk on robot perception at a conference in Boston."},
    {"title": "Tax", "text": "Many companies pick the country of their headquarters for its tax rules."},
    {"title": "Remote", "text": "Some employees work for a company headquartered in another country."},
    {"title": "Zurich", "text": "Zurich is a city in Switzerland known for banking."},
]
QUESTION = "In which city is the company that Tomas Berg works for headquartered?"
THREE_HOP = "In which country is the company that Tomas Berg works for headquartered?"


@pytest.fixture
def two_hop(make_services, tmp_path):
    path = tmp_path / "twohop.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in TWO_HOP) + "\n")
    svc = make_services()
    svc.pipeline.ingest([str(path)])
    return svc


def _titles(res):
    return [c.title for c in res.chunks]


def test_hybrid_finds_the_second_hop_that_vector_misses(two_hop):
    vec = two_hop.retriever.search(QUESTION, mode="vector", top_k=3)
    hyb = two_hop.retriever.search(QUESTION, mode="hybrid", top_k=3)
    assert "Helios" not in _titles(vec), _titles(vec)
    assert "Helios" in _titles(hyb) and "Berg" in _titles(hyb), _titles(hyb)
    assert any(s.name == "Tomas Berg" for s in hyb.seeds)
    # the relation cues ('works for', 'headquartered') made the walk follow worksFor to the employer
    assert any(s.name == "Helios Robotics" for s in hyb.seeds)


def test_graph_mode_reaches_the_third_hop_and_shows_the_path(two_hop):
    res = two_hop.retriever.search(THREE_HOP, mode="graph", top_k=4)
    assert "Lyon" in _titles(res), _titles(res)
    vec = two_hop.retriever.search(THREE_HOP, mode="vector", top_k=4)
    assert "Lyon" not in _titles(vec), _titles(vec)
    helios = next(c for c in res.chunks if c.title == "Helios")
    path = next(e for e in res.evidence if e.chunk_id == helios.id)
    assert path.hops[0] == ("Tomas Berg", "worksFor", "Helios Robotics")
    lyon = next(c for c in res.chunks if c.title == "Lyon")
    assert {"France", "Lyon"} <= {e.name for e in lyon.entities}
    assert {e.label for e in lyon.entities if e.name == "France"} == {"Country"}


def test_khop_mode_also_reaches_the_second_hop(two_hop):
    two_hop.retriever.graph_algorithm = "khop"
    res = two_hop.retriever.search(QUESTION, mode="graph", top_k=3)
    assert "Helios" in _titles(res), _titles(res)


def test_answer_cites_sentences_that_are_in_the_source(make_services, sample_dir):
    svc = make_services()
    svc.pipeline.ingest([str(sample_dir)])
    res = svc.retriever.search("Who founded Helios Robotics?", top_k=5)
    ans = svc.answerer.answer(res)
    assert ans.kind == "extractive" and ans.citations
    assert "Marie Dubois" in ans.text
    texts = {}
    for d in (doc for p in sample_dir.iterdir() for doc in parse_file(p)):
        texts[d.id] = d.text
    for c in ans.citations:
        assert texts[c.doc_id][c.start:c.end] == c.text
        assert c.text in ans.text
    assert set(ans.timings) >= {"embed", "vector_search", "graph_traversal", "enrich", "answer", "total"}


def test_answer_embeds_only_the_best_candidates_when_capped(make_services, sample_dir):
    """The cap cuts what the answer step embeds (the real model, counted), never the citations' validity."""
    from kgfactory.retrieval.answer import ExtractiveAnswerer, sentences

    svc = make_services()
    svc.pipeline.ingest([str(sample_dir)])
    res = svc.retriever.search("Who founded Helios Robotics?", top_k=5)
    n_cands = sum(len(sentences(c.text)) for c in res.chunks)
    seen: list[int] = []

    class Counting:
        dim = svc.embedder.dim

        def embed(self, texts, **kw):
            seen.append(len(texts))
            return svc.embedder.embed(texts, **kw)

    full = ExtractiveAnswerer(Counting(), max_embedded=None).answer(res)
    capped = ExtractiveAnswerer(Counting(), max_embedded=2).answer(res)
    assert seen[0] == n_cands + 1 and n_cands > 2 + len(res.chunks)
    assert seen[1] <= 2 + len(res.chunks) + 1  # the question, the best two, each chunk's best
    assert "Marie Dubois" in capped.text and "Marie Dubois" in full.text
    assert {c.chunk_id for c in capped.citations} <= {c.id for c in res.chunks}


def test_deleted_document_leaves_every_mode(two_hop):
    doc_id = next(c.doc_id for c in two_hop.retriever.search(QUESTION, mode="hybrid", top_k=5).chunks if c.title == "Helios")
    two_hop.pipeline.delete(doc_id)
    for mode in ("vector", "graph", "hybrid"):
        res = two_hop.retriever.search(QUESTION, mode=mode, top_k=7)
        assert doc_id not in {c.doc_id for c in res.chunks}, mode


def test_filters_restrict_results(make_services, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Marie Dubois founded Helios Robotics.")
    b.write_text("Priya Raman works for Nordlicht Logistics.")
    svc = make_services()
    svc.pipeline.ingest([str(a)], tags=["alpha"])
    svc.pipeline.ingest([str(b)], tags=["beta"], tenant="acme")
    for mode in ("vector", "graph", "hybrid"):
        res = svc.retriever.search("Who founded Helios Robotics?", mode=mode, top_k=5, filters={"tag": "beta"})
        assert {c.title for c in res.chunks} <= {"b"}, mode
        res = svc.retriever.search("Who works for Nordlicht?", mode=mode, top_k=5, filters={"tenant": "default"})
        assert {c.title for c in res.chunks} <= {"a"}, mode


@pytest.mark.parametrize("kwargs, message", [
    ({"query": ""}, "empty"),
    ({"query": "   "}, "empty"),
    ({"query": "x" * 2001}, "limit is 2000"),
    ({"mode": "magic"}, "unknown mode"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 101}, "top_k"),
    ({"filters": {"colour": "red"}}, "unknown filter"),
])
def test_bad_queries_get_clear_errors(make_services, kwargs, message):
    svc = make_services()
    args = {"query": "hello", "mode": "hybrid", "top_k": 5, "filters": None, **kwargs}
    with pytest.raises(RetrievalError, match=message):
        svc.retriever.search(args["query"], args["mode"], args["top_k"], args["filters"])


def test_empty_store_says_no_knowledge_yet(make_services):
    svc = make_services()
    svc.pipeline.ensure_ready()
    res = svc.retriever.search("anything?")
    assert res.empty_store and res.chunks == []
    assert svc.answerer.answer(res).text.startswith("No knowledge yet")


def test_index_reloads_only_after_a_write(make_services, tmp_path):
    (tmp_path / "a.txt").write_text("Marie Dubois founded Helios Robotics.")
    svc = make_services()
    svc.pipeline.ingest([str(tmp_path / "a.txt")])
    first = svc.retriever.index()
    assert svc.retriever.index() is first  # no write: same index object
    (tmp_path / "b.txt").write_text("Priya Raman works for Nordlicht Logistics.")
    svc.pipeline.ingest([str(tmp_path / "b.txt")])
    second = svc.retriever.index()
    assert second is not first and second.n_chunks == first.n_chunks + 1
