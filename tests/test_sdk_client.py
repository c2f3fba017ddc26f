"""The SDK against the real app: `Client` over a live uvicorn on loopback, `AsyncClient` over httpx.ASGITransport
(the same app object, one lifespan), error mapping, streaming, retries, ingest with progress, the LangChain
retriever in an LCEL chain and the agent tools. Real engines and models throughout (shared session fixtures)."""
from __future__ import annotations

import asyncio
import io

import httpx
import pytest

from api_support import LiveServer, RdflibStandIn, SAMPLE_TEXT_B, build, free_port, make_keys

from kgfactory import errors as core_errors
from kgfactory.sdk import (AskResult, AsyncClient, AuthenticationError, Client, NotFoundError,
                           PermissionDeniedError, RateLimitError, ServerError, TransportError, ValidationError)
from kgfactory.sdk import TimeoutError as SDKTimeout
from kgfactory.sdk.errors import NotAvailableError, error_for

QUESTION = "Who founded Helios Robotics?"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app
    from kgfactory.cli.main import sample_dir

    data = tmp_path_factory.mktemp("sdk") / "data"
    svc = build(data, embedder, extractor)
    # SPARQL here checks the client's protocol handling against a fixed rdflib dataset whose rows are known; the
    # real RDF view is exercised by the examples test (analyst.py) and the semantic layer's own tests
    real_rdf, svc.rdf = getattr(svc, "rdf", None), RdflibStandIn(
        {"acme": [("urn:x:helios", "urn:x:foundedBy", "Marie Dubois")]})
    keys = make_keys(svc.settings.data_dir)
    app = create_app(services=svc)
    live = LiveServer(app, port=free_port()).start()
    seen = []
    with Client(live.url, keys["a_ingester"]) as c:
        ingested = c.ingest(sample_dir(), tags=["sample"], progress=seen.append, poll_interval=0.1)
    with Client(live.url, keys["b_admin"]) as c:
        other = c.ingest(texts=[("Globex", SAMPLE_TEXT_B)])
    yield {"url": live.url, "keys": keys, "svc": svc, "app": app, "ingested": ingested, "progress": seen,
           "other": other}
    live.stop()
    svc.rdf = real_rdf
    svc.close()


def client(server, key="a_admin", **kw) -> Client:
    return Client(server["url"], server["keys"][key] if key else "", **kw)


# --- ingest ----------------------------------------------------------------------------------------------------
def test_ingest_directory_waits_and_reports_progress(server):
    res, seen = server["ingested"], server["progress"]
    assert res.ok and res.documents_added >= 4 and res.chunks >= 4 and not res.errors
    assert [j.state for j in res.jobs] == ["succeeded"] and sorted(res.jobs[0].files) == \
        ["helios.md", "news.jsonl", "people.txt", "places.html"]
    assert seen and seen[-1].jobs_done == seen[-1].jobs_total == 1 and seen[-1].files_total == 4
    done = [p.documents_processed for p in seen]
    assert done == sorted(done) and done[-1] >= 4  # monotonic; a JSONL file holds several documents
    assert server["other"].documents_added == 1


def test_ingest_texts_file_objects_per_file_errors_and_delete(server):
    with client(server, "a_ingester") as c:
        res = c.ingest(texts=["Zorblax Industries makes widgets in Quahog."],
                       files=[("zorblax-notes.txt", b"Zorblax Industries was founded by Peter Griffin."),
                              ("empty.md", io.BytesIO(b""))], tags="scratch")
        assert res.ok and res.documents_added == 2
        assert [e["file"] for e in res.errors] == ["empty.md"] and res.errors[0]["reason"]
        queued = c.ingest(texts=[{"title": "Later", "text": "Quahog is a town in Rhode Island."}], wait=False)
        assert queued.jobs[0].state in ("queued", "running", "succeeded")
        done = c.job(queued.jobs[0].id)
        ids = [d.id for d in c.documents() if "scratch" in (d.tags or [])]
        assert len(ids) == 2
        for doc_id in ids:
            assert c.delete(doc_id).deleted
        with pytest.raises(NotFoundError):
            c.document(ids[0])
        assert done.id == queued.jobs[0].id
        # refused before anything is sent
        with pytest.raises(ValidationError, match="unsupported file type"):
            c.ingest(__file__)
        with pytest.raises(ValidationError, match="nothing to ingest"):
            c.ingest([])


# --- question answering ------------------------------------------------------------------------------------------
def test_ask_and_search_over_live_server(server):
    with client(server, "a_reader") as c:
        a = c.ask(QUESTION)
        assert isinstance(a, AskResult) and a.kind == "extractive" and "Marie Dubois" in a.answer
        assert a.citations and all(cit.end > cit.start for cit in a.citations)
        assert any("Helios" in cit.title or "helios" in cit.source for cit in a.citations)
        assert any(s.name == "Helios Robotics" for s in a.seeds)
        audit = server["app"].state.kgf.audit
        searches, queries = len(audit.read(action="search", limit=10**6)), len(audit.read(action="query", limit=10**6))
        s = c.search(QUESTION, mode="vector", top_k=3)
        assert 1 <= len(s.chunks) <= 3 and s.chunks[0].score >= s.chunks[-1].score and s.mode == "vector"
        assert all(ch.text and ch.doc_id for ch in s.chunks)
        # filters narrow the search; another tenant's text is never retrieved
        assert not c.search("Globex doomsday devices", tags=["nope"]).chunks
        assert all("Globex" not in ch.text for ch in c.search("Globex doomsday devices").chunks)
        # search() goes to /v1/search (retrieval only): three "search" audit entries, no "query" ones
        assert len(audit.read(action="search", limit=10**6)) == searches + 3
        assert len(audit.read(action="query", limit=10**6)) == queries


def test_ask_stream_yields_tokens_then_the_answer(server):
    with client(server, "a_reader") as c:
        items = list(c.ask_stream(QUESTION))
    assert isinstance(items[-1], AskResult) and all(isinstance(i, str) for i in items[:-1]) and len(items) >= 2
    final = items[-1]
    assert "".join(items[:-1]).strip() == final.answer.strip() and final.citations


def test_documents_entity_cypher_sparql_ontology(server):
    with client(server, "a_admin") as c:
        docs = c.documents()
        assert {d.tenant for d in docs} == {"acme"} and len(docs) >= 4
        detail = c.document(next(d.id for d in docs if d.title and "Helios" in d.title))
        assert detail.chunks and detail.entities
        ent = next(e for e in detail.entities if e["name"] == "Helios Robotics")
        e = c.entity(ent["id"])
        assert e.name == "Helios Robotics" and e.mentions and e.neighbours
        r = c.cypher("MATCH (e:Entity) WHERE e.name = $n RETURN e.name AS name, e.label AS label", {"n": "Helios Robotics"})
        assert r.columns == ["name", "label"] and r.records()[0]["name"] == "Helios Robotics" and r.tenant == "acme"
        assert c.cypher("MATCH (d:Document) RETURN d.title AS t", max_rows=2).row_count == 2
        sp = c.sparql("SELECT ?o WHERE { ?s ?p ?o }")
        assert sp.kind == "select" and sp.vars == ["o"] and sp.rows() == [{"o": "Marie Dubois"}]
        assert c.sparql("ASK { ?s ?p 'Marie Dubois' }").boolean is True
        g = c.sparql("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
        assert g.kind == "graph" and "Marie Dubois" in g.graph
        ont = c.ontology()
        assert "Organization" in ont["classes"]
        assert c.graph_schema()["labels"]["Document"] >= 4
        assert c.whoami()["tenant"] == "acme"


def test_api_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("KGF_API_KEY", server["keys"]["b_admin"])
    monkeypatch.setenv("KGF_API_URL", server["url"])
    with Client() as c:
        assert c.whoami()["tenant"] == "globex"
        assert [d.title for d in c.documents()] == ["Globex"]


# --- errors ------------------------------------------------------------------------------------------------------
def test_errors_are_mapped_to_the_tree(server):
    with client(server, None) as c:
        with pytest.raises(AuthenticationError) as ei:
            c.ask(QUESTION)
        assert ei.value.status == 401 and ei.value.type == "unauthenticated" and ei.value.request_id
    with client(server, "revoked") as c, pytest.raises(AuthenticationError, match="revoked"):
        c.documents()
    with client(server, "a_reader") as c:
        with pytest.raises(PermissionDeniedError, match="analyst") as ei:
            c.cypher("MATCH (n) RETURN n LIMIT 1")
        assert isinstance(ei.value, AuthenticationError) and ei.value.status == 403
        with pytest.raises(NotFoundError) as ei:
            c.document("doc_does_not_exist")
        assert isinstance(ei.value, core_errors.NotFoundError)
        with pytest.raises(NotFoundError):
            c.entity("ent_nope")
        with pytest.raises(ValidationError, match="top_k") as ei:
            c.ask(QUESTION, top_k=0)
        assert ei.value.status == 422
    with client(server, "a_analyst") as c:
        with pytest.raises(ValidationError, match="read-only") as ei:
            c.cypher("CREATE (n:Entity {name: 'x'}) RETURN n")
        assert ei.value.type == "write_refused" and ei.value.status == 400
        with pytest.raises(ValidationError, match="Cypher failed"):
            c.cypher("MATCH (n RETURN n")


def test_error_for_maps_every_status_class():
    body = {"error": {"type": "store_unavailable", "message": "graph down", "request_id": "r1"}}
    e = error_for(503, body, {"retry-after": "2"})
    assert isinstance(e, ServerError) and e.retry_after == 2.0 and "graph down" in str(e) and "r1" in str(e)
    assert isinstance(error_for(501, body), NotAvailableError)
    assert isinstance(error_for(413, body), ValidationError) and isinstance(error_for(415, "x"), ValidationError)
    assert isinstance(error_for(429, body), RateLimitError)


def test_transport_errors_and_timeouts(server):
    with Client(f"http://127.0.0.1:{free_port()}", "k", retries=1, backoff=0.01) as c:
        with pytest.raises(TransportError, match="kgf serve"):
            c.documents()
    with client(server, "a_reader", timeout=0.001, retries=0) as c, pytest.raises(SDKTimeout):
        c.ask(QUESTION)


def test_rate_limit_error_and_retry_with_backoff(server):
    """A second app on the same services with 60 requests/minute (one per second after the burst)."""
    from fastapi.testclient import TestClient

    from kgfactory.api import create_app

    svc = server["svc"]
    app = create_app(settings=svc.settings.model_copy(update={"api_rate_limit_per_minute": 60}), services=svc)

    async def run():
        t = httpx.ASGITransport(app=app)
        key = server["keys"]["a_reader"]
        async with AsyncClient("http://sdk.test", key, transport=t, retries=0) as c:
            with pytest.raises(RateLimitError) as ei:
                for _ in range(70):
                    await c.whoami()
            assert ei.value.status == 429 and ei.value.retry_after and ei.value.retry_after >= 1
        async with AsyncClient("http://sdk.test", key, transport=t, retries=2, max_backoff=1.5) as c:
            assert (await c.whoami())["tenant"] == "acme"  # waited for Retry-After (capped), then went through

    with TestClient(app):  # runs the second app's lifespan
        asyncio.run(run())


# --- AsyncClient over httpx.ASGITransport ---------------------------------------------------------------------------
def test_async_client_over_asgi_transport(server):
    async def run():
        t = httpx.ASGITransport(app=server["app"])
        async with AsyncClient("http://sdk.test", server["keys"]["a_admin"], transport=t) as c:
            a = await c.ask(QUESTION)
            assert "Marie Dubois" in a.answer and a.citations
            items = [i async for i in c.ask_stream(QUESTION)]
            assert isinstance(items[-1], AskResult) and items[-1].answer == a.answer
            audit = server["app"].state.kgf.audit
            n = len(audit.read(action="search", limit=10**6))
            s = await c.search(QUESTION, top_k=2)
            assert len(s.chunks) == 2 and s.mode == "hybrid"
            assert len(audit.read(action="search", limit=10**6)) == n + 1  # over /v1/search
            res = await c.ingest(texts=[("Async note", "Nordlicht Logistics opened a depot in Bremen.")],
                                 poll_interval=0.1)
            assert res.ok and res.documents_added == 1
            docs = await c.documents()
            doc = next(d for d in docs if d.title == "Async note")
            assert (await c.document(doc.id)).chunks
            assert (await c.cypher("MATCH (d:Document) RETURN count(d) AS n")).rows[0][0] == len(docs)
            assert (await c.delete(doc.id)).deleted
            with pytest.raises(NotFoundError):
                await c.delete(doc.id)
            assert "classes" in await c.ontology()
            assert (await c.sparql("ASK { ?s ?p ?o }")).boolean is True

    asyncio.run(run())


# --- LangChain -------------------------------------------------------------------------------------------------------
def test_langchain_retriever_in_an_lcel_chain(server):
    from langchain_core.documents import Document
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from kgfactory.sdk.langchain import KGFactoryRetriever

    with client(server, "a_reader") as c:
        retriever = KGFactoryRetriever(client=c, top_k=3)
        docs = retriever.invoke(QUESTION)
        assert docs and all(isinstance(d, Document) for d in docs) and len(docs) <= 3
        top = docs[0].metadata
        assert set(top["citation"]) >= {"doc_id", "chunk_id", "title", "source", "start", "end"}
        assert isinstance(top["score"], float) and top["score"] >= docs[-1].metadata["score"]
        assert any(e["name"] == "Helios Robotics" for d in docs for e in d.metadata["entities"])

        def fmt(ds: list[Document]) -> str:
            return "\n".join(f"[{i}] ({d.metadata['citation']['title']}) {d.page_content}" for i, d in enumerate(ds, 1))

        prompt = ChatPromptTemplate.from_messages([("system", "Answer from the context only.\n{context}"),
                                                   ("human", "{question}")])
        chain = {"context": retriever | RunnableLambda(fmt), "question": RunnablePassthrough()} | prompt
        msgs = chain.invoke(QUESTION).to_messages()
        assert "Marie Dubois" in msgs[0].content and "[1]" in msgs[0].content and msgs[1].content == QUESTION
        # async path: the blocking client runs in a thread
        adocs = asyncio.run(retriever.ainvoke(QUESTION))
        assert [d.id for d in adocs] == [d.id for d in docs]


def test_langchain_retriever_over_async_client(server):
    from kgfactory.sdk.langchain import KGFactoryRetriever

    async def run():
        t = httpx.ASGITransport(app=server["app"])
        async with AsyncClient("http://sdk.test", server["keys"]["a_reader"], transport=t) as c:
            r = KGFactoryRetriever(client=c, top_k=2, mode="vector")
            docs = await r.ainvoke(QUESTION)
            assert len(docs) == 2 and docs[0].metadata["citation"]["chunk_id"] == docs[0].id
            with pytest.raises(TypeError, match="ainvoke"):
                r.invoke(QUESTION)

    asyncio.run(run())


def test_langchain_tools_for_agents(server):
    import json

    from kgfactory.sdk.langchain import kgfactory_tools

    with client(server, "a_admin") as c:
        tools = {t.name: t for t in kgfactory_tools(c)}
        assert set(tools) == {"kgfactory_ask", "kgfactory_cypher", "kgfactory_sparql"}
        out = tools["kgfactory_ask"].invoke({"question": QUESTION})
        assert "Marie Dubois" in out and "Sources:" in out
        rows = json.loads(tools["kgfactory_cypher"].invoke(
            {"query": "MATCH (e:Organization) RETURN e.name AS name ORDER BY name"}))["rows"]
        assert {"name": "Helios Robotics"} in rows
        assert tools["kgfactory_cypher"].invoke({"query": "MATCH (n) DETACH DELETE n"}).startswith("error:")
        assert json.loads(tools["kgfactory_sparql"].invoke({"query": "SELECT ?o WHERE { ?s ?p ?o }"}))["rows"] == \
            [{"o": "Marie Dubois"}]
