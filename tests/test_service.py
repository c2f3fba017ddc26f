"""The application layer (kgfactory/service/) called directly, on real stores: validation, tenant scoping, ingest
of texts and files, delete, entities and schema, Cypher's error classes, SPARQL, the metrics hook."""
from __future__ import annotations

import pytest

from kgfactory.errors import (CypherQueryError, CypherRefusedError, CypherTimeout, InvalidInputError, KGFError,
                              NotFoundError)
from kgfactory.service.knowledge import KnowledgeService
from kgfactory.service.results import AskResult

HELIOS = ("Helios Robotics was founded by Marie Dubois in Lyon. Tomas Berg works for Helios Robotics as its chief "
          "engineer. Helios Robotics builds warehouse robots.")
GLOBEX = ("Globex Corporation is headquartered in Springfield. Hank Scorpio founded Globex Corporation and works "
          "for it as its chief executive.")


class Heard:
    """An Observer that writes down what the layer tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def retrieved(self, result) -> None:
        self.calls.append(("retrieved", result.mode))

    def answered(self, result, answer) -> None:
        self.calls.append(("answered", answer.kind))

    def searched(self, result) -> None:
        self.calls.append(("searched", result.mode))


@pytest.fixture(scope="module")
def two(tmp_path_factory, embedder, extractor):
    """One data dir, tenants acme (Helios text + a file) and globex (Globex text)."""
    from api_support import build

    svc = build(tmp_path_factory.mktemp("service") / "data", embedder, extractor)
    acme, globex = KnowledgeService(svc, "acme"), KnowledgeService(svc, "globex")
    res = acme.ingest(texts=[("Helios", HELIOS)], files=[("notes.txt", b"Tomas Berg lives in Lyon.")], tags=["t1"])
    assert res.ok and res.documents_added == 2 and res.errors == []
    assert globex.ingest(texts=[("Globex", GLOBEX)]).documents_added == 1
    yield {"svc": svc, "acme": acme, "globex": globex}
    svc.close()


@pytest.mark.parametrize("call, needle", [
    (lambda kb: kb.ask(""), "question"),
    (lambda kb: kb.ask("x" * 2001), "question"),
    (lambda kb: kb.ask("Who?", mode="psychic"), "unknown mode"),
    (lambda kb: kb.search("Who?", top_k=0), "top_k"),
    (lambda kb: kb.search("Who?", top_k=101), "top_k"),
    (lambda kb: kb.search("Who?", top_k=True), "top_k"),
    (lambda kb: kb.search("Who?", tags=["t"] * 51), "tags"),
    (lambda kb: kb.documents(status="lost"), "status"),
    (lambda kb: kb.entity("ent_x", limit=501), "limit"),
    (lambda kb: kb.ingest(), "nothing to ingest"),
    (lambda kb: kb.ingest(texts=[("Same", "a"), ("Same", "b")]), "appears twice"),
    (lambda kb: kb.ingest(texts=["ok"], tags=["bad\x00tag"]), "tag"),
    (lambda kb: kb.ingest(files=[("..", b"x")]), "file name"),
    (lambda kb: kb.ingest(files=[("a|b.txt", b"x")]), "file name"),
    (lambda kb: kb.ingest(files=[("sheet.xlsx", b"x")]), "unsupported"),
    (lambda kb: kb.ingest(["/no/such/file.txt"]), "no such file"),
    (lambda kb: kb.cypher("MATCH (n) RETURN n", max_rows=0), "max_rows"),
])
def test_invalid_input_is_refused_with_the_core_error(two, call, needle):
    with pytest.raises(InvalidInputError, match=needle):
        call(two["acme"])


def test_the_all_tenants_scope_is_not_a_tenant_to_write_into(two, tmp_path):
    """'*' names API keys over every tenant (analyst Cypher on Neo4j Community); nothing may be stored under it."""
    from kgfactory.settings import Settings

    star = KnowledgeService(two["svc"], "*")
    with pytest.raises(InvalidInputError, match="reserved"):
        star.ingest(texts=[("Star", "Tomas Berg lives in Lyon.")])
    with pytest.raises(InvalidInputError, match="reserved"):
        two["svc"].pipeline.ingest([str(tmp_path)], tenant="*")
    with pytest.raises(ValueError):
        Settings(tenant="*", data_dir=tmp_path)
    assert not (two["svc"].settings.data_dir / "uploads" / "*").exists()
    assert [d.id for d in star.documents()] == []


def test_a_tenant_sees_only_its_own_documents_and_entities(two):
    acme, globex = two["acme"], two["globex"]
    assert sorted(d.title for d in acme.documents()) == ["Helios", "notes"]
    assert [d.title for d in globex.documents()] == ["Globex"]
    helios = next(d for d in acme.documents() if d.title == "Helios")
    assert acme.document(helios.id).chunks
    with pytest.raises(NotFoundError):
        globex.document(helios.id)
    with pytest.raises(NotFoundError):
        globex.delete(helios.id)
    ask = acme.ask("Who founded Helios Robotics?")
    assert "Marie Dubois" in ask.answer and ask.citations
    ent = next(s for s in ask.seeds if s.name == "Helios Robotics")
    assert acme.entity(ent.id).name == "Helios Robotics"
    with pytest.raises(NotFoundError):
        globex.entity(ent.id)
    other = globex.search("Who founded Helios Robotics?", top_k=10)
    assert other.chunks and {c.title for c in other.chunks} == {"Globex"}
    labels = acme.graph_schema().labels
    assert labels["Document"] == 2 and globex.graph_schema().labels["Document"] == 1


def test_cypher_runs_on_the_tenant_view_and_raises_typed_errors(two):
    acme, globex = two["acme"], two["globex"]
    q = "MATCH (d:Document) RETURN d.title AS title ORDER BY title"
    assert acme.cypher(q).records() == [{"title": "Helios"}, {"title": "notes"}]
    assert globex.cypher(q).records() == [{"title": "Globex"}]
    assert globex.cypher("MATCH (n) RETURN count(n) AS n").rows[0][0] < acme.cypher("MATCH (n) RETURN count(n)").rows[0][0]
    with pytest.raises(CypherRefusedError):
        acme.cypher("MATCH (n) DETACH DELETE n")
    with pytest.raises(CypherQueryError) as bad:
        acme.cypher("MATCH (n RETURN n")
    assert not isinstance(bad.value, CypherTimeout)
    with pytest.raises(CypherTimeout):
        acme.cypher("UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 3 RETURN count(x)", timeout_ms=1)
    assert acme.cypher(q, max_rows=1).truncated


def test_sparql_reads_the_tenant_graph_only(two):
    q = 'SELECT ?n WHERE { ?e rdfs:label ?n . FILTER(STR(?n) IN ("Marie Dubois", "Hank Scorpio")) }'
    assert [r["n"] for r in two["acme"].sparql(q).rows()] == ["Marie Dubois"]
    assert [r["n"] for r in two["globex"].sparql(q).rows()] == ["Hank Scorpio"]


def test_stream_retrieves_first_and_ends_with_the_answer_and_the_hook_hears_it(two):
    heard = Heard()
    kb = KnowledgeService(two["svc"], "acme", observer=heard)
    with pytest.raises(InvalidInputError):  # raised by the call, before any piece is asked for
        kb.ask_stream("Who?", mode="psychic")
    stream = kb.ask_stream("Who founded Helios Robotics?")
    assert stream.retrieval.chunks and heard.calls == [("retrieved", "hybrid")]
    items = list(stream)
    assert isinstance(items[-1], AskResult) and "".join(i for i in items[:-1]).strip() == items[-1].answer.strip()
    assert heard.calls[-1] == ("answered", "extractive")
    kb.search("Who?", mode="vector")
    assert heard.calls[-2:] == [("retrieved", "vector"), ("searched", "vector")]


def test_delete_removes_the_document_and_its_uploaded_file(two):
    acme = two["acme"]
    notes = next(d for d in acme.documents() if d.title == "notes")
    staged = acme.uploads_dir / "notes.txt"
    assert staged.is_file()
    res = acme.delete(notes.id)
    assert res.deleted and res.chunks >= 1 and res.upload_removed and not staged.exists()
    assert [d.title for d in acme.documents()] == ["Helios"]
    with pytest.raises(NotFoundError):
        acme.document(notes.id)


def test_errors_map_to_one_status_table():
    from kgfactory.service.status import NotAvailableError, status_of

    assert status_of(CypherTimeout("t")) == (408, "timeout")
    assert status_of(CypherQueryError("q")) == (400, "bad_query")
    assert status_of(CypherRefusedError("no", kind="write_refused")) == (400, "write_refused")
    assert status_of(InvalidInputError("x")) == (422, "invalid_input")
    assert status_of(NotFoundError("x")) == (404, "not_found")
    assert status_of(NotAvailableError("x")) == (501, "not_implemented")
    assert status_of(KGFError("x")) == (500, "internal_error")
