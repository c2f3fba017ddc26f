"""Issue 14, defects 7, 8 and 11 at the request level (real engines, a real uvicorn where the socket matters).

7: an unpaired surrogate anywhere in a JSON body is 422 naming the field (never 500, never a reset connection).
8: an id holding NUL or another control character, or overlong, is 404 before any store (never 503).
11: strict numeric/bool fields; delete removes the uploaded copy; open mode ignores a bearer token.
"""
from __future__ import annotations

import json
import socket

import httpx
import pytest

from api_support import LiveServer, build, h, make_keys, wait_job

pytestmark = pytest.mark.timeout(300)

TEXT = ("Helios Robotics was founded by Ada Park in Oslo. Ada Park works for Helios Robotics as its chief "
        "engineer. Helios Robotics builds warehouse robots.")


@pytest.fixture(scope="module")
def api(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app

    svc = build(tmp_path_factory.mktemp("sec-api") / "data", embedder, extractor)
    keys = make_keys(svc.settings.data_dir)
    server = LiveServer(create_app(services=svc)).start()  # a real socket: keep-alive behaviour is part of it
    client = httpx.Client(base_url=server.url, timeout=120)
    try:
        r = client.post("/v1/documents/texts", headers=h(keys["a_admin"]),
                        json={"texts": [{"title": "Helios", "text": TEXT}], "tags": ["café"]})
        assert r.status_code == 202, r.text
        assert wait_job(client, r.json()["id"], keys["a_admin"])["state"] == "succeeded"
        yield {"svc": svc, "keys": keys, "server": server, "client": client}
    finally:
        client.close()
        server.stop()
        svc.close()


def _raw_post(server, path: str, body: bytes, key: str) -> tuple[int, dict, "socket.socket"]:
    """POST a raw body (JSON escapes kept exactly as written) on a fresh keep-alive connection."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    _send(s, path, body, key)
    status, payload = _read(s)
    return status, payload, s


def _send(s, path: str, body: bytes, key: str) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    s.sendall(head.encode() + body)


def _read(s) -> tuple[int, dict]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        more = s.recv(65536)
        assert more, "the server closed the connection before answering"
        buf += more
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(x.split(":", 1)[1]) for x in lines if x.lower().startswith("content-length:"))
    while len(rest) < length:
        more = s.recv(65536)
        assert more, "the server closed the connection mid-body"
        rest += more
    return int(lines[0].split()[1]), json.loads(rest[:length])


# --- 7: unpaired surrogates ------------------------------------------------------------------------
SURROGATE_BODIES = [
    ("/v1/chat/completions", b'{"model": "kgfactory", "messages": [{"role": "user", "content": "\\ud800"}]}',
     "messages.0.content"),
    ("/v1/chat/completions", b'{"model": "kgfactory", "messages": [{"role": "user", "content": '
                             b'[{"type": "text", "text": "Who \\udc00?"}]}]}', "messages.0.content.0.text"),
    ("/v1/query", b'{"question": "\\ud800"}', "question"),
    ("/v1/search", b'{"query": "Helios \\ud83d"}', "query"),
    ("/v1/query", b'{"question": "Helios", "filters": {"tag": ["\\ud800"]}}', "filters.tag.0"),
    ("/v1/documents/texts", b'{"texts": [{"title": "T\\ud800", "text": "x"}]}', "texts.0.title"),
    ("/v1/documents/texts", b'{"texts": [{"title": "T", "text": "Helios \\udfff Robotics"}]}', "texts.0.text"),
    ("/v1/documents/texts", b'{"texts": [{"title": "T", "text": "x", "metadata": {"k": ["\\ud800"]}}]}',
     "texts.0.metadata.k.0"),
    ("/v1/documents/texts", b'{"texts": [{"title": "T", "text": "x", "metadata": {"\\ud800": 1}}]}', "metadata"),
    ("/v1/documents/texts", b'{"texts": [{"title": "T", "text": "x"}], "tags": ["\\ud800"]}', "tags.0"),
    ("/v1/cypher", b'{"query": "MATCH (e:Entity) RETURN e.name AS n LIMIT 1", "params": {"x": "\\ud800"}}',
     "params.x"),
]


@pytest.mark.parametrize("path,body,field", SURROGATE_BODIES, ids=[f"{p}:{f}" for p, _, f in SURROGATE_BODIES])
def test_lone_surrogate_anywhere_in_a_body_is_422_naming_the_field(api, path, body, field):
    status, payload, s = _raw_post(api["server"], path, body, api["keys"]["a_admin"])
    try:
        assert status == 422, payload
        err = payload["error"]
        assert err["type"] == "invalid_request" and field in err["message"] and "surrogate" in err["message"], err
        # the keep-alive connection is still good: a valid request on the same socket is answered
        _send(s, "/v1/search", b'{"question": "Who founded Helios Robotics?", "top_k": 2}', api["keys"]["a_admin"])
        status2, payload2 = _read(s)
        assert status2 == 200 and payload2["chunks"], payload2
    finally:
        s.close()


def test_a_refused_body_writes_nothing_and_the_audit_log_still_works(api):
    before = len(api["svc"].graph.list_documents(tenant="acme"))
    status, _, s = _raw_post(api["server"], "/v1/documents/texts", b'{"texts": [{"title": "Z", "text": "\\ud800"}]}',
                             api["keys"]["a_admin"])
    s.close()
    assert status == 422
    assert len(api["svc"].graph.list_documents(tenant="acme")) == before
    r = api["client"].get("/v1/audit?limit=5", headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 200 and r.json()


def test_an_out_of_range_integer_is_422_not_500(api):
    """Found by the schemathesis run: `after` past SQLite's INTEGER range raised OverflowError (500)."""
    r = api["client"].get(f"/v1/audit?after={2 ** 64}", headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 422, r.text


# --- 8: control characters and overlong ids ---------------------------------------------------------
BAD_IDS = [("GET", "/v1/documents/%00"), ("GET", "/v1/entities/%00"), ("DELETE", "/v1/documents/a%00b"),
           ("GET", "/v1/jobs/%00"), ("GET", "/v1/documents/doc%1b%5b0m"), ("GET", "/v1/entities/e%0Ax"),
           ("DELETE", "/v1/documents/" + "d" * 201), ("GET", "/v1/entities/" + "e" * 5000)]


@pytest.mark.parametrize("method,url", BAD_IDS, ids=[f"{m} {u[:30]}" for m, u in BAD_IDS])
def test_an_id_no_store_can_hold_is_404_before_any_store(api, method, url):
    r = api["client"].request(method, url, headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize("filters,field", [({"tag": ["a\x00"]}, "filters.tag.0"), ({"doc_id": ["d", "x\x1b"]},
                                                                                   "filters.doc_id.1")])
def test_control_characters_in_filter_values_are_422_naming_the_field(api, filters, field):
    r = api["client"].post("/v1/search", json={"question": "Who founded Helios?", "filters": filters},
                           headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 422 and field in r.json()["error"]["message"], r.text


def test_store_adapters_call_bad_input_invalid_not_unavailable(api):
    """The 503 came from the adapters wrapping FalkorDB's syntax error on a NUL (and Milvus' parse error) as
    'the store failed'. Now the adapter says the input is bad, before sending anything."""
    from kgfactory.errors import GraphInputError, InvalidInputError, VectorInputError

    svc = api["svc"]
    for bad in ("a\x00b", "x\ud800"):
        with pytest.raises(GraphInputError):
            svc.graph.get_document(bad)
        with pytest.raises(VectorInputError):
            svc.vectors.chunk_ids_for_document(bad)
        with pytest.raises(InvalidInputError):
            svc.pipeline.delete(bad)
    assert svc.graph.get_document("no-such-doc") is None  # the stores are fine


def test_non_ascii_filter_values_are_matched_not_refused(api):
    """Milvus filter literals were JSON with \\u escapes, which Milvus cannot parse: a tag 'café' was a 503."""
    r = api["client"].post("/v1/search", headers=h(api["keys"]["a_admin"]),
                           json={"question": "Who founded Helios Robotics?", "filters": {"tag": ["café"]}})
    assert r.status_code == 200, r.text
    assert r.json()["chunks"] and all("Helios" in ch["text"] for ch in r.json()["chunks"])


# --- 11: strict types ---------------------------------------------------------------------------------
STRICT = [("/v1/query", {"question": "Helios?", "top_k": "5"}), ("/v1/query", {"question": "Helios?", "top_k": True}),
          ("/v1/query", {"question": "Helios?", "top_k": 5.0}), ("/v1/query", {"question": "Helios?", "stream": "true"}),
          ("/v1/query", {"question": "Helios?", "stream": 1}), ("/v1/search", {"question": "Helios?", "top_k": "5"}),
          ("/v1/search", {"question": "Helios?", "top_k": False}),
          ("/v1/chat/completions", {"model": "kgfactory", "messages": [{"role": "user", "content": "hi"}], "top_k": "5"}),
          ("/v1/chat/completions", {"model": "kgfactory", "messages": [{"role": "user", "content": "hi"}],
                                    "stream": "yes"}),
          ("/v1/cypher", {"query": "MATCH (n) RETURN count(n) AS n", "max_rows": "10"}),
          ("/v1/cypher", {"query": "MATCH (n) RETURN count(n) AS n", "timeout_ms": True})]


@pytest.mark.parametrize("path,body", STRICT, ids=[f"{p}:{json.dumps(b)[-30:]}" for p, b in STRICT])
def test_numbers_and_booleans_are_strict(api, path, body):
    r = api["client"].post(path, json=body, headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request"


def test_strict_fields_still_take_their_own_types(api):
    c = api["client"]
    r = c.post("/v1/search", json={"question": "Who founded Helios Robotics?", "top_k": 3},
               headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 200 and r.json()["top_k"] == 3
    r = c.post("/v1/query", json={"question": "Who founded Helios Robotics?", "top_k": 2, "stream": False},
               headers=h(api["keys"]["a_admin"]))
    assert r.status_code == 200 and "Ada Park" in r.json()["answer"]


# --- 11: a delete removes every copy -------------------------------------------------------------------
def test_delete_removes_the_uploaded_copy(api):
    data_dir = api["svc"].settings.data_dir
    key = api["keys"]["a_ingester"]
    c = api["client"]
    r = c.post("/v1/documents", headers=h(key), files=[
        ("files", ("secret-notes.txt", b"Globex Corporation is headquartered in Springfield.")),
        ("files", ("records.jsonl", b'{"title": "r0", "text": "Hank Scorpio founded Globex."}\n'
                                    b'{"title": "r1", "text": "Globex builds doomsday devices."}\n'))])
    assert r.status_code == 202, r.text
    assert wait_job(c, r.json()["id"], key)["state"] == "succeeded"
    uploads = data_dir / "uploads" / "acme"
    assert (uploads / "secret-notes.txt").is_file() and (uploads / "records.jsonl").is_file()
    docs = {d["title"]: d for d in c.get("/v1/documents", headers=h(key)).json()}

    r = c.delete(f"/v1/documents/{docs['secret-notes']['id']}", headers=h(key))
    assert r.status_code == 200 and r.json()["deleted"] and r.json()["upload_removed"] is True
    assert not (uploads / "secret-notes.txt").exists()
    # a JSONL upload holds several documents: its file goes with the last of them
    r = c.delete(f"/v1/documents/{docs['r0']['id']}", headers=h(key))
    assert r.status_code == 200 and r.json()["upload_removed"] is False
    assert (uploads / "records.jsonl").is_file()
    r = c.delete(f"/v1/documents/{docs['r1']['id']}", headers=h(key))
    assert r.status_code == 200 and r.json()["upload_removed"] is True
    assert not (uploads / "records.jsonl").exists()
    # other documents and their uploads are untouched
    assert any(p.name.startswith("Helios-") for p in uploads.iterdir())


def _doc_row(doc_id: str, tenant: str, path: str):
    from kgfactory.rows import DocumentRow

    return DocumentRow(id=doc_id, source=path, title="", mime="text/plain", tenant=tenant, tags=[],
                       metadata={"path": path}, ingested_at=None, status="complete", chunk_count=1, entity_count=0,
                       run_id=None)


def test_upload_folder_cannot_leave_the_data_dir(api):
    from kgfactory.service.uploads import remove_copy, tenant_dir
    from kgfactory.errors import ConfigError

    data_dir = api["svc"].settings.data_dir
    for bad in ("..", ".", "../other", "a/../../x", ""):
        with pytest.raises(ConfigError):
            tenant_dir(data_dir, bad)
    # a document whose source is outside its tenant's upload folder (a CLI ingest of the user's own file, or
    # a crafted path) never has that file removed
    (data_dir / "uploads" / "globex").mkdir(parents=True, exist_ok=True)
    for where in (data_dir / "outside.txt", data_dir / "uploads" / "globex" / "theirs.txt"):
        where.write_text("keep me")
        doc = _doc_row("doc_gone", "acme", str(where))
        assert remove_copy(data_dir, doc, api["svc"].graph) is None and where.read_text() == "keep me"
    sneaky = data_dir / "uploads" / "acme" / ".." / "globex" / "theirs.txt"
    doc = _doc_row("doc_gone", "acme", str(sneaky))
    assert remove_copy(data_dir, doc, api["svc"].graph) is None and sneaky.read_text() == "keep me"


# --- 11: open mode ignores a bearer token ----------------------------------------------------------------
def test_open_mode_ignores_a_bearer_token(tmp_path, embedder, extractor):
    import openai

    from kgfactory.api import create_app

    svc = build(tmp_path / "open", embedder, extractor, api_open=True, tenant="solo")
    server = LiveServer(create_app(services=svc)).start()
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything-at-all")  # always sends a bearer
        assert "kgfactory" in [m.id for m in client.models.list()]
        resp = client.chat.completions.create(model="kgfactory", messages=[{"role": "user", "content": "Who?"}])
        assert resp.choices[0].finish_reason == "stop"
        r = httpx.get(server.url + "/v1/whoami", headers={"X-API-Key": "whatever"}, timeout=30)
        assert r.status_code == 200 and r.json()["tenant"] == "solo" and "admin" in r.json()["roles"]
    finally:
        server.stop()
        svc.close()
