"""TestClient tests for every route and its errors, tenant isolation and audit entries (real engines)."""
from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient

from api_support import SAMPLE_TEXT_B, build, h, make_keys, wait_job

QUESTION = "Who founded Helios Robotics?"


@pytest.fixture(scope="module")
def api(tmp_path_factory, embedder, extractor, sample_dir_module):
    from kgfactory.api import create_app

    data = tmp_path_factory.mktemp("api") / "data"
    svc = build(data, embedder, extractor, api_max_json_bytes=100_000, max_file_bytes=200_000)
    keys = make_keys(svc.settings.data_dir)
    app = create_app(services=svc)
    with TestClient(app) as client:
        files = [("files", (p.name, p.read_bytes())) for p in sorted(sample_dir_module.iterdir())]
        files.append(("files", ("empty.txt", b"")))  # a bad file: reported per file, the rest go on
        r = client.post("/v1/documents", files=files, data={"tags": ["sample"]}, headers=h(keys["a_ingester"]))
        assert r.status_code == 202, r.text
        job_a = wait_job(client, r.json()["id"], keys["a_admin"])
        r = client.post("/v1/documents/texts", json={"texts": [{"title": "Globex", "text": SAMPLE_TEXT_B}]},
                        headers=h(keys["b_admin"]))
        assert r.status_code == 202, r.text
        job_b = wait_job(client, r.json()["id"], keys["b_admin"])
        yield {"client": client, "keys": keys, "svc": svc, "job_a": job_a, "job_b": job_b, "app": app}
    svc.close()


@pytest.fixture(scope="module")
def sample_dir_module():
    from kgfactory.cli.main import sample_dir

    return sample_dir()


def docs_of(api, key):
    r = api["client"].get("/v1/documents", headers=h(api["keys"][key]))
    assert r.status_code == 200
    return r.json()


# --- ingest jobs and documents -------------------------------------------------------------------
def test_ingest_jobs_report_progress_and_per_file_errors(api):
    ja = api["job_a"]
    assert ja["state"] == "succeeded" and ja["tenant"] == "acme"
    assert ja["run"]["documents_added"] >= 4 and ja["progress"]["documents_processed"] >= ja["run"]["documents_added"]
    assert [e["file"] for e in ja["errors"]] == ["empty.txt"] and ja["errors"][0]["reason"]
    assert api["job_b"]["state"] == "succeeded" and api["job_b"]["run"]["documents_added"] == 1
    # jobs are per tenant
    ids = [j["id"] for j in api["client"].get("/v1/jobs", headers=h(api["keys"]["b_admin"])).json()]
    assert ids == [api["job_b"]["id"]]
    r = api["client"].get(f"/v1/jobs/{ja['id']}", headers=h(api["keys"]["b_admin"]))
    assert r.status_code == 404 and "no ingest job" in r.json()["error"]["message"]


def test_documents_are_tenant_scoped(api):
    a, b = docs_of(api, "a_reader"), docs_of(api, "b_admin")
    assert {d["tenant"] for d in a} == {"acme"} and {d["tenant"] for d in b} == {"globex"}
    assert len(b) == 1 and not {d["id"] for d in a} & {d["id"] for d in b}
    doc = next(d for d in a if d["title"] and "Helios" in (d["title"] or ""))
    r = api["client"].get(f"/v1/documents/{doc['id']}", headers=h(api["keys"]["a_reader"]))
    assert r.status_code == 200
    body = r.json()
    assert body["chunks"] and [c["index"] for c in body["chunks"]] == sorted(c["index"] for c in body["chunks"])
    assert any(e["name"] for e in body["entities"])
    # another tenant's document is 404, exactly like an unknown id
    r = api["client"].get(f"/v1/documents/{doc['id']}", headers=h(api["keys"]["b_admin"]))
    assert r.status_code == 404 and "no document" in r.json()["error"]["message"]
    assert api["client"].get("/v1/documents/doc_nope", headers=h(api["keys"]["a_reader"])).status_code == 404
    assert api["client"].get("/v1/documents?status=weird", headers=h(api["keys"]["a_reader"])).status_code == 422


def test_delete_document_own_tenant_only(api):
    c, k = api["client"], api["keys"]
    r = c.post("/v1/documents/texts", json={"texts": [{"title": "Throwaway", "text": "Zorblax Industries makes widgets in Quahog."}]},
               headers=h(k["a_ingester"]))
    job = wait_job(c, r.json()["id"], k["a_ingester"])
    assert job["run"]["documents_added"] == 1
    doc = next(d for d in docs_of(api, "a_reader") if d["title"] == "Throwaway")
    ask = {"question": "What does Zorblax Industries make?", "top_k": 3}
    r = c.post("/v1/query", json=ask, headers=h(k["a_reader"]))  # the live index has it, patched in
    assert doc["id"] in {ch["doc_id"] for ch in r.json()["chunks"]}
    assert c.get("/readyz").json()["checks"]["graph"]["detail"]["index"]["kind"] == "incremental"
    # globex cannot delete it, and a reader may not delete at all
    r = c.delete(f"/v1/documents/{doc['id']}", headers=h(k["b_admin"]))
    assert r.status_code == 404
    r = c.delete(f"/v1/documents/{doc['id']}", headers=h(k["a_reader"]))
    assert r.status_code == 403 and "ingester" in r.json()["error"]["message"]
    assert c.get(f"/v1/documents/{doc['id']}", headers=h(k["a_reader"])).status_code == 200
    r = c.delete(f"/v1/documents/{doc['id']}", headers=h(k["a_ingester"]))
    assert r.status_code == 200 and r.json()["deleted"] and r.json()["chunks"] >= 1
    assert c.get(f"/v1/documents/{doc['id']}", headers=h(k["a_reader"])).status_code == 404
    assert doc["id"] not in {ch["doc_id"] for ch in c.post("/v1/query", json=ask, headers=h(k["a_reader"])).json()["chunks"]}
    assert c.delete(f"/v1/documents/{doc['id']}", headers=h(k["a_ingester"])).status_code == 404


def test_upload_refusals_store_nothing(api):
    c, k = api["client"], api["keys"]
    before = len(c.get("/v1/jobs", headers=h(k["a_admin"])).json())
    r = c.post("/v1/documents", files=[("files", ("a.txt", b"fine text here")), ("files", ("tool.exe", b"MZ"))],
               headers=h(k["a_ingester"]))
    assert r.status_code == 415 and "tool.exe" in r.json()["error"]["message"] and ".pdf" in r.json()["error"]["message"]
    r = c.post("/v1/documents", files=[("files", ("big.txt", b"x" * 200_001))], headers=h(k["a_ingester"]))
    assert r.status_code == 413 and "big.txt" in r.json()["error"]["message"]
    r = c.post("/v1/documents", files=[("files", ("../../etc.txt", b"text"))], headers=h(k["a_ingester"]))
    assert r.status_code in (202, 400)  # a path is cut to its base name, never written outside the upload dir
    if r.status_code == 202:
        wait_job(c, r.json()["id"], k["a_ingester"])
        assert r.json()["files"] == ["etc.txt"]
        before += 1
    r = c.post("/v1/documents", headers=h(k["a_ingester"]))
    assert r.status_code == 422 and "files" in r.json()["error"]["message"]
    assert len(c.get("/v1/jobs", headers=h(k["a_admin"])).json()) == before
    assert not list((api["svc"].settings.data_dir / "api" / "staging").glob("*/*"))


# --- question answering --------------------------------------------------------------------------
def test_query_answers_with_citations_from_own_tenant(api):
    c, k = api["client"], api["keys"]
    r = c.post("/v1/query", json={"question": QUESTION, "top_k": 5}, headers=h(k["a_reader"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] in ("extractive", "generated") and body["citations"] and body["chunks"]
    assert "Ada" in body["answer"] or "Helios" in body["answer"]
    acme_ids = {d["id"] for d in docs_of(api, "a_reader")}
    assert {ch["doc_id"] for ch in body["chunks"]} <= acme_ids
    assert "total" in body["timings"]
    # the other tenant asks the same: nothing of acme's comes back
    r = c.post("/v1/query", json={"question": QUESTION}, headers=h(k["b_admin"]))
    assert r.status_code == 200
    assert not {ch["doc_id"] for ch in r.json()["chunks"]} & acme_ids
    assert all(ci["doc_id"] not in acme_ids for ci in r.json()["citations"])


def test_query_stream_sends_events(api):
    with api["client"].stream("POST", "/v1/query", json={"question": QUESTION, "stream": True},
                              headers=h(api["keys"]["a_reader"])) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [blk.split("\n")[0].removeprefix("event: ") for blk in text.strip().split("\n\n")]
    assert events[0] == "retrieval" and "token" in events and events[-2:] == ["answer", "done"]
    answer = json.loads(text.split("event: answer\ndata: ")[1].split("\n")[0])
    assert answer["citations"]


@pytest.mark.parametrize("body,status,needle", [
    ('{"question": "x", ', 400, "malformed JSON"),
    ('{"question": "x", "top_k": "many"}', 422, "top_k"),
    ('{"question": "x", "top_k": 1000}', 422, "top_k"),
    ('{"question": "x", "mode": "telepathy"}', 422, "mode"),
    ('{"question": ""}', 422, "question"),
    ('{"question": "x", "filters": {"tenant": "globex"}}', 422, "tenant"),
    ('[1, 2]', 422, "body"),
])
def test_query_bad_input(api, body, status, needle):
    _assert_refused(api, "/v1/query", body, status, needle)


def _assert_refused(api, route: str, body: str, status: int, needle: str) -> None:
    """A raw JSON body the route must refuse with `status`, the message naming `needle`, and a request id."""
    r = api["client"].post(route, content=body, headers={**h(api["keys"]["a_reader"]), "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"] and r.json()["error"]["request_id"]


def test_search_returns_retrieval_only_from_own_tenant(api):
    c, k = api["client"], api["keys"]
    before = c.get("/v1/audit?action=search&limit=1000", headers=h(k["a_admin"])).json()
    queries_before = len(c.get("/v1/audit?action=query&limit=1000", headers=h(k["a_admin"])).json())
    r = c.post("/v1/search", json={"question": QUESTION, "mode": "hybrid", "top_k": 3}, headers=h(k["a_reader"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert "answer" not in body and "citations" not in body and body["mode"] == "hybrid" and body["top_k"] == 3
    assert 1 <= len(body["chunks"]) <= 3 and "total" in body["timings"]
    top = body["chunks"][0]
    assert {"id", "doc_id", "title", "source", "start", "end", "page", "score", "vector_score", "graph_score",
            "entities"} <= set(top) and top["end"] > top["start"]
    assert [ch["score"] for ch in body["chunks"]] == sorted((ch["score"] for ch in body["chunks"]), reverse=True)
    assert any("Helios" in s["name"] for s in body["seeds"])
    assert any("Helios" in ch["text"] for ch in body["chunks"])
    acme_ids = {d["id"] for d in docs_of(api, "a_reader")}
    assert {ch["doc_id"] for ch in body["chunks"]} <= acme_ids
    # `query` names the question too; filters narrow; vector mode has no graph evidence
    r = c.post("/v1/search", json={"query": QUESTION, "mode": "vector", "top_k": 2, "filters": {"tag": ["nope"]}},
               headers=h(k["a_reader"]))
    assert r.status_code == 200 and r.json()["chunks"] == []
    # another tenant: none of acme's documents, and acme never sees globex's text
    r = c.post("/v1/search", json={"question": QUESTION, "top_k": 10}, headers=h(k["b_admin"]))
    assert r.status_code == 200 and r.json()["chunks"]
    assert not {ch["doc_id"] for ch in r.json()["chunks"]} & acme_ids
    r = c.post("/v1/search", json={"question": "Globex doomsday devices", "top_k": 10}, headers=h(k["a_reader"]))
    assert all("Globex" not in ch["text"] for ch in r.json()["chunks"])
    # audited as "search" (and no "query" entry: no answer was made)
    after = c.get("/v1/audit?action=search&limit=1000", headers=h(k["a_admin"])).json()
    assert len(after) == len(before) + 3 and {e["outcome"] for e in after} == {"ok"}
    first = after[2]  # newest first
    assert first["target"] == QUESTION and first["detail"]["mode"] == "hybrid" and first["key_id"]
    assert len(c.get("/v1/audit?action=query&limit=1000", headers=h(k["a_admin"])).json()) == queries_before
    m = c.get("/metrics").text
    assert 'kgf_searches_total{mode="hybrid"}' in m and 'route="/v1/search",status="200"' in m


@pytest.mark.parametrize("body,status,needle", [
    ('{"question": "x", "mode": "telepathy"}', 422, "mode"),
    ('{"question": "x", "top_k": 0}', 422, "top_k"),
    ('{"question": "x", "stream": true}', 422, "stream"),
    ('{"question": "x", "filters": {"tenant": "globex"}}', 422, "tenant"),
    ('{"mode": "vector"}', 422, "question"),
    ('{"question": "x", ', 400, "malformed JSON"),
])
def test_search_bad_input(api, body, status, needle):
    _assert_refused(api, "/v1/search", body, status, needle)
    assert api["client"].post("/v1/search", json={"question": QUESTION}).status_code == 401


def test_oversized_json_is_refused_before_reading(api):
    r = api["client"].post("/v1/query", json={"question": "x" * 150_000}, headers=h(api["keys"]["a_reader"]))
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]


# --- auth ------------------------------------------------------------------------------------------
def test_auth_refusals(api):
    c, k = api["client"], api["keys"]
    r = c.post("/v1/query", json={"question": QUESTION})
    assert r.status_code == 401 and "kgf keys create" in r.json()["error"]["message"]
    assert c.post("/v1/query", json={"question": QUESTION}, headers=h(k["revoked"])).status_code == 401
    assert c.get("/v1/documents", headers={"X-API-Key": "kgf_000000000000_" + "x" * 32}).status_code == 401
    assert c.get("/v1/documents", headers={"X-API-Key": k["a_reader"]}).status_code == 200
    r = c.post("/v1/cypher", json={"query": "MATCH (n) RETURN count(n)"}, headers=h(k["a_reader"]))
    assert r.status_code == 403 and "'analyst'" in r.json()["error"]["message"]
    r = c.post("/v1/documents/texts", json={"texts": [{"title": "t", "text": "x"}]}, headers=h(k["a_analyst"]))
    assert r.status_code == 403
    assert c.get("/v1/audit", headers=h(k["a_analyst"])).status_code == 403


# --- analysts: Cypher, ontology, entities, schema --------------------------------------------------
def cypher(api, key, query, **kw):
    return api["client"].post("/v1/cypher", json={"query": query, **kw}, headers=h(api["keys"][key]))


def test_cypher_sees_only_own_tenant(api):
    r = cypher(api, "a_analyst", "MATCH (n) WHERE n.tenant IS NOT NULL RETURN DISTINCT n.tenant AS t")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["acme"]] and r.json()["columns"] == ["t"]
    r = cypher(api, "b_admin", "MATCH (d:Document) RETURN d.title AS title")
    assert r.json()["rows"] == [["Globex"]]
    # aggregates over everything still count one tenant only
    n_acme_docs = len(docs_of(api, "a_reader"))
    r = cypher(api, "a_analyst", "MATCH (d:Document) RETURN count(d) AS n")
    assert r.json()["rows"] == [[n_acme_docs]]
    r = cypher(api, "a_analyst", "MATCH (r:IngestRun) RETURN count(r) AS n")
    assert r.json()["rows"] == [[0]]  # lineage nodes carry no tenant and are not in the view


def test_cypher_params_rows_cap_and_nodes_as_json(api):
    r = cypher(api, "a_analyst", "UNWIND range(1, $n) AS x RETURN x", params={"n": 50}, max_rows=10)
    assert r.status_code == 200 and r.json()["row_count"] == 10 and r.json()["truncated"] is True
    r = cypher(api, "a_analyst", "MATCH (e:Entity) RETURN e LIMIT 1")
    node = r.json()["rows"][0][0]
    assert node["tenant"] == "acme" and "Entity" in node["_labels"]


@pytest.mark.parametrize("query", [
    "CREATE (:Document {id: 'evil', tenant: 'globex'})",
    "MATCH (d:Document) DETACH DELETE d",
    "MATCH (d:Document) SET d.tenant = 'acme'",
    "MERGE (x:X) RETURN x",
    "match (n) remove n.tenant",
])
def test_cypher_write_refused_and_nothing_changes(api, query):
    before = api["svc"].graph.stats()
    r = cypher(api, "a_admin", query)
    assert r.status_code == 400 and "read-only" in r.json()["error"]["message"]
    assert api["svc"].graph.stats() == before


def test_cypher_errors_and_timeout(api):
    r = cypher(api, "a_analyst", "MATCH (n RETURN n")
    assert r.status_code == 400 and "Cypher failed" in r.json()["error"]["message"]
    r = cypher(api, "a_analyst", "UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 3 RETURN count(x)", timeout_ms=20)
    assert r.status_code == 408 and "timed out" in r.json()["error"]["message"]
    r = api["client"].post("/v1/cypher", json={"query": 5}, headers=h(api["keys"]["a_analyst"]))
    assert r.status_code == 422


def test_ontology_schema_and_entities(api):
    c, k = api["client"], api["keys"]
    ont = c.get("/v1/ontology", headers=h(k["a_reader"])).json()
    assert "Organization" in ont["classes"] and ont["object_properties"]
    schema = c.get("/v1/graph/schema", headers=h(k["a_reader"])).json()
    assert schema["labels"]["Document"] == len(docs_of(api, "a_reader")) and schema["relationship_types"]["MENTIONS"] > 0
    b_schema = c.get("/v1/graph/schema", headers=h(k["b_admin"])).json()
    assert b_schema["labels"]["Document"] == 1
    seeds = c.post("/v1/query", json={"question": QUESTION}, headers=h(k["a_reader"])).json()["seeds"]
    eid = next(s["id"] for s in seeds if "Helios" in s["name"])
    r = c.get(f"/v1/entities/{eid}", headers=h(k["a_reader"]))
    assert r.status_code == 200 and r.json()["mentions"] and r.json()["neighbours"]
    assert all(n["id"] for n in r.json()["neighbours"])
    assert c.get(f"/v1/entities/{eid}", headers=h(k["b_admin"])).status_code == 404
    assert c.get("/v1/entities/ent_unknown", headers=h(k["a_reader"])).status_code == 404


# --- SPARQL refusals that never reach a store ------------------------------------------------------
def test_sparql_update_and_bad_requests_refused(api):
    c, k = api["client"], api["keys"]
    r = c.post("/sparql", content="INSERT DATA { <a> <b> <c> }", headers={**h(k["a_analyst"]),
                                                                         "Content-Type": "application/sparql-update"})
    assert r.status_code == 400 and "read-only" in r.json()["error"]["message"]
    r = c.post("/sparql", data={"update": "DELETE WHERE { ?s ?p ?o }"}, headers=h(k["a_analyst"]))
    assert r.status_code == 400 and "Update" in r.json()["error"]["message"]
    r = c.get("/sparql", params={"query": " "}, headers=h(k["a_analyst"]))
    assert r.status_code == 400 and "no SPARQL query" in r.json()["error"]["message"]
    r = c.post("/sparql", data={"default-graph-uri": "urn:kgf:ontology"}, headers=h(k["a_analyst"]))
    assert r.status_code == 400 and "no SPARQL query" in r.json()["error"]["message"]
    r = c.post("/sparql", content="x", headers={**h(k["a_analyst"]), "Content-Type": "text/html"})
    assert r.status_code == 415
    r = c.get("/sparql", params={"query": "ASK {}"}, headers=h(k["a_reader"]))
    assert r.status_code == 403


# --- OpenAI-compatible routes (the real openai client is in test_api_live.py) ----------------------
def test_models_and_chat_completions(api):
    c, k = api["client"], api["keys"]
    assert "kgfactory" in [m["id"] for m in c.get("/v1/models", headers=h(k["a_reader"])).json()["data"]]
    r = c.post("/v1/chat/completions", json={"model": "kgfactory", "messages": [{"role": "user", "content": QUESTION}]},
               headers=h(k["a_reader"]))
    assert r.status_code == 200 and "Sources:" in r.json()["choices"][0]["message"]["content"]
    r = c.post("/v1/chat/completions", json={"model": "gpt-99", "messages": [{"role": "user", "content": "hi"}]},
               headers=h(k["a_reader"]))
    assert r.status_code == 404 and "/v1/models" in r.json()["error"]["message"]
    r = c.post("/v1/chat/completions", json={"model": "kgfactory", "messages": [{"role": "system", "content": "be nice"}]},
               headers=h(k["a_reader"]))
    assert r.status_code == 400 and "user message" in r.json()["error"]["message"]


# --- operations ------------------------------------------------------------------------------------
def test_health_ready_metrics_and_request_ids(api):
    c = api["client"]
    assert c.get("/healthz").json() == {"status": "ok"}
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["graph"]["ok"] and r.json()["checks"]["vectors"]["ok"]
    c.post("/v1/query", json={"question": QUESTION}, headers=h(api["keys"]["a_reader"]))
    graph = c.get("/readyz").json()["checks"]["graph"]["detail"]  # a query brings the index up to the revision
    assert graph["index"]["kind"] in ("full", "incremental") and graph["index"]["revision"] == graph["revision"]
    rep = graph["replica"]  # this process's index next to the store's revision, and how it last caught up
    assert rep["revision"] == rep["store_revision"] == graph["revision"] and rep["lag_revisions"] == 0
    assert rep["lag_seconds"] == 0 and rep["last_catch_up"] in ("patch", "reload") and rep["following"] is True
    m = c.get("/metrics").text
    assert 'kgf_http_request_duration_seconds_count{method="POST",route="/v1/query",status="200"}' in m
    assert 'kgf_retrieval_stage_seconds_count{stage="embed"}' in m
    assert 'kgf_ingest_documents_total{outcome="added"}' in m and 'kgf_http_errors_total{' in m
    r = c.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    r = c.get("/v1/nothing-here")
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]


# --- audit -----------------------------------------------------------------------------------------
def test_audit_log_records_actions_per_tenant_and_is_append_only(api):
    c, k = api["client"], api["keys"]
    cypher(api, "a_analyst", "MATCH (n) RETURN count(n)")
    entries = c.get("/v1/audit?limit=1000", headers=h(k["a_admin"])).json()
    actions = {(e["action"], e["outcome"]) for e in entries}
    for want in [("ingest", "accepted"), ("ingest", "succeeded"), ("query", "ok"), ("cypher", "ok"),
                 ("cypher", "refused"), ("delete", "ok"), ("auth", "denied"), ("chat", "ok")]:
        assert want in actions, want
    assert {e["tenant"] for e in entries} == {"acme"}
    q = next(e for e in entries if e["action"] == "query")
    assert q["who"] and q["ts"] and q["request_id"] and q["key_id"]
    b = c.get("/v1/audit?limit=1000", headers=h(k["b_admin"])).json()
    assert b and {e["tenant"] for e in b} == {"globex"}
    only = c.get("/v1/audit?action=cypher", headers=h(k["a_admin"])).json()
    assert only and {e["action"] for e in only} == {"cypher"}
    db = sqlite3.connect(api["svc"].settings.data_dir / "api" / "audit.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET outcome = 'ok'")
    db.close()


def test_a_streams_error_event_maps_like_the_handlers():
    """After the status line went out, an error is an event with the same type and status the handlers answer;
    an unexpected error's own text (paths, internals) stays in the server log."""
    from kgfactory.api.errors import stream_error
    from kgfactory.errors import CypherTimeout, LLMBudgetError

    spent = stream_error(LLMBudgetError("acme", 120, 100))
    assert spent["type"] == "llm_budget_spent" and spent["status"] == 429
    assert stream_error(CypherTimeout("Cypher timed out"))["status"] == 408
    leaked = stream_error(RuntimeError("/srv/secret/path failed"))
    assert leaked["status"] == 500 and leaked["type"] == "internal_error" and "secret" not in leaked["message"]
