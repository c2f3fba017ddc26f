"""Real clients against a live uvicorn on loopback: the `openai` client, SPARQLWrapper, httpx, and the CLI
finding the running server for its data directory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from api_support import LiveServer, SAMPLE_TEXT_B, build, free_port, h, make_keys, wait_job, wait_ready

TEXT_A = ("Helios Robotics was founded by Ada Park in Oslo. Ada Park works for Helios Robotics as its chief "
          "engineer. Helios Robotics builds warehouse robots.")


@pytest.fixture(scope="module")
def live(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app

    data = tmp_path_factory.mktemp("live") / "data"
    svc = build(data, embedder, extractor)
    keys = make_keys(svc.settings.data_dir)
    port = free_port()
    server = LiveServer(create_app(services=svc, announce_url=f"http://127.0.0.1:{port}"), port=port).start()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for key, title, text in [("a_admin", "Helios", TEXT_A), ("b_admin", "Globex", SAMPLE_TEXT_B)]:
            r = c.post("/v1/documents/texts", json={"texts": [{"title": title, "text": text}]}, headers=h(keys[key]))
            assert r.status_code == 202
            assert wait_job(c, r.json()["id"], keys[key])["state"] == "succeeded"
    yield {"url": server.url, "keys": keys, "svc": svc}
    server.stop()
    svc.close()


def test_openai_client_chat_completions(live):
    import openai

    client = openai.OpenAI(base_url=live["url"] + "/v1", api_key=live["keys"]["a_reader"])
    assert "kgfactory" in [m.id for m in client.models.list()]
    resp = client.chat.completions.create(model="kgfactory",
                                          messages=[{"role": "user", "content": "Who founded Helios Robotics?"}])
    text = resp.choices[0].message.content
    assert "Ada Park" in text and "Sources:" in text and resp.choices[0].finish_reason == "stop"
    parts = []
    stream = client.chat.completions.create(model="kgfactory-hybrid", stream=True,
                                            messages=[{"role": "user", "content": "Who founded Helios Robotics?"}])
    finish = None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert "Ada Park" in "".join(parts) and "Sources:" in "".join(parts) and finish == "stop"
    # the other tenant's key gets the other tenant's knowledge only
    other = openai.OpenAI(base_url=live["url"] + "/v1", api_key=live["keys"]["b_admin"])
    text_b = other.chat.completions.create(model="kgfactory", messages=[{"role": "user", "content": "Who founded Helios Robotics?"}]).choices[0].message.content
    assert "Ada Park" not in text_b
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live["url"] + "/v1", api_key="wrong").models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def _sparql(live, key, query, fmt=None, method=None):
    from SPARQLWrapper import GET, JSON, POST, SPARQLWrapper

    w = SPARQLWrapper(live["url"] + "/sparql")
    w.addCustomHttpHeader("Authorization", f"Bearer {live['keys'][key]}")
    w.setQuery(query)
    w.setMethod(method or GET)
    if fmt:
        w.setReturnFormat(fmt)
    return w


NAMES = 'SELECT DISTINCT ?name WHERE { ?e a kgfv:Entity ; rdfs:label ?name . FILTER(STR(?name) IN ("Ada Park", "Hank Scorpio")) }'


def test_sparqlwrapper_select_ask_construct_formats(live):
    """The real RDF view (Services.rdf): each key reads its own tenant's named graph only."""
    from SPARQLWrapper import CSV, JSON, POST, TURTLE, XML

    res = _sparql(live, "a_analyst", NAMES, JSON).query().convert()
    assert [b["name"]["value"] for b in res["results"]["bindings"]] == ["Ada Park"]
    res = _sparql(live, "b_admin", NAMES, JSON, POST).query().convert()  # urlencoded POST; the other tenant's graph
    assert [b["name"]["value"] for b in res["results"]["bindings"]] == ["Hank Scorpio"]
    xml = _sparql(live, "a_analyst", NAMES, XML).query().convert()
    assert "Ada Park" in xml.toxml() and "Hank Scorpio" not in xml.toxml()
    csv = _sparql(live, "a_analyst", NAMES, CSV).query().convert()
    assert b"Ada Park" in csv
    ask = 'ASK { ?e rdfs:label ?n . FILTER(STR(?n) = "Hank Scorpio") }'
    assert _sparql(live, "a_analyst", ask, JSON).query().convert()["boolean"] is False
    assert _sparql(live, "b_admin", ask, JSON).query().convert()["boolean"] is True
    construct = 'CONSTRUCT { ?e rdfs:label ?n } WHERE { ?e a kgfv:Entity ; rdfs:label ?n }'
    ttl = _sparql(live, "a_analyst", construct, TURTLE).query().convert()
    assert b"Ada Park" in ttl and b"Hank Scorpio" not in ttl
    # application/sparql-query POST body, TSV by Accept
    r = httpx.post(live["url"] + "/sparql", content=NAMES, headers={**h(live["keys"]["a_analyst"]),
                   "Content-Type": "application/sparql-query", "Accept": "text/tab-separated-values"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/tab-separated-values")
    assert "Ada Park" in r.text
    r = httpx.get(live["url"] + "/sparql", params={"query": NAMES}, headers={**h(live["keys"]["a_analyst"]),
                  "Accept": "image/png"})
    assert r.status_code == 406
    r = httpx.get(live["url"] + "/sparql", params={"query": "SELECT * WHERE { ?s ?p"}, headers=h(live["keys"]["a_analyst"]))
    assert r.status_code == 400 and r.json()["error"]["type"] == "sparql_error"


def test_sparqlwrapper_update_refused(live):
    from SPARQLWrapper import POST
    from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

    w = _sparql(live, "a_admin", "INSERT DATA { <urn:a> <urn:b> 'c' }", method=POST)
    with pytest.raises(QueryBadFormed):  # SPARQLWrapper's name for a 400
        w.query()


def test_cli_ask_goes_through_running_server(live):
    from typer.testing import CliRunner

    from kgfactory.cli.main import app

    data = str(live["svc"].settings.data_dir)
    env = {"KGF_API_KEY": live["keys"]["a_reader"]}
    r = CliRunner().invoke(app, ["ask", "Who founded Helios Robotics?", "-d", data, "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert "Ada Park" in json.loads(r.stdout)["answer"]
    r = CliRunner().invoke(app, ["ask", "Who founded Helios Robotics?", "-d", data, "--tenant", "globex"], env=env)
    assert r.exit_code == 2 and "acme" in r.output
    r = CliRunner().invoke(app, ["stats", "-d", data])
    assert r.exit_code == 2 and "kgf serve" in r.output and live["url"] in r.output


def test_kgf_serve_process_open_mode_and_sigterm(tmp_path):
    """The real entry point: `kgf serve --open` starts, answers, writes server.json and removes it on SIGTERM."""
    port = free_port()
    env = {**os.environ, "KGF_DATA_DIR": str(tmp_path / "d"), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, timeout=180)
        info = json.loads((tmp_path / "d" / "api" / "server.json").read_text())
        assert info["pid"] == proc.pid and info["url"] == url
        r = httpx.post(url + "/v1/query", json={"question": "anything"})  # open mode: no key needed
        assert r.status_code == 200 and r.json()["kind"] == "none"
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out
    assert not (tmp_path / "d" / "api" / "server.json").exists()
    assert any(json.loads(line).get("route") == "/v1/query" for line in out.splitlines() if line.startswith("{"))


# --- issue 17: the SPARQL protocol as SPARQLWrapper and rdflib use it by default, with HTTP Basic ---------------
CONSTRUCT = 'CONSTRUCT { ?e rdfs:label ?n } WHERE { ?e a kgfv:Entity ; rdfs:label ?n }'


def _basic(live, key, user="anyone"):
    return httpx.BasicAuth(user, live["keys"][key])


def test_sparqlwrapper_defaults_with_basic_auth(live):
    """No return format set: SPARQLWrapper asks for RDF/XML for CONSTRUCT/DESCRIBE (406 before) and SPARQL XML
    for SELECT; credentials by setCredentials (HTTP Basic), the key as password."""
    import rdflib
    from SPARQLWrapper import SPARQLWrapper
    from SPARQLWrapper.SPARQLExceptions import Unauthorized

    def wrapper(key, query, password=None):
        w = SPARQLWrapper(live["url"] + "/sparql")
        w.setCredentials("sparql-user", password or live["keys"][key])
        w.setQuery(query)
        return w

    g = wrapper("a_analyst", CONSTRUCT).query().convert()
    assert isinstance(g, rdflib.Graph)
    names = {str(o) for o in g.objects(None, rdflib.RDFS.label)}
    assert "Ada Park" in names and "Hank Scorpio" not in names
    entity = next(s for s, o in g.subject_objects(rdflib.RDFS.label) if str(o) == "Ada Park")
    d = wrapper("a_analyst", f"DESCRIBE <{entity}>").query().convert()
    assert isinstance(d, rdflib.Graph) and (entity, rdflib.RDFS.label, None) in d
    doc = wrapper("b_admin", NAMES).query().convert()  # SELECT: SPARQL XML, parsed to a DOM
    assert "Hank Scorpio" in doc.toxml() and "Ada Park" not in doc.toxml()
    with pytest.raises(Unauthorized):
        wrapper("a_analyst", NAMES, password="kgf_000000000000_wrongwrongwrongwrongwrong").query()


def test_rdflib_sparqlstore_defaults_with_basic_auth(live):
    import rdflib
    from rdflib.plugins.stores.sparqlstore import SPARQLStore

    store = SPARQLStore(live["url"] + "/sparql", auth=("anyone", live["keys"]["a_analyst"]))
    rows = list(store.query(NAMES))
    assert [str(r[0]) for r in rows] == ["Ada Park"]
    g = rdflib.Graph(store)  # a Graph over the store, queried as rdflib users do
    res = g.query(CONSTRUCT)
    labels = {str(o) for _, _, o in res}
    assert "Ada Park" in labels and "Hank Scorpio" not in labels
    assert bool(store.query("ASK { ?s ?p ?o }")) is True
    # a Graph named after the tenant's graph sends it as default-graph-uri; another tenant's is refused
    mine = rdflib.Graph(store, identifier=rdflib.URIRef("urn:kgf:tenant:acme"))
    assert [str(r[0]) for r in mine.query(NAMES)] == ["Ada Park"]
    theirs = rdflib.Graph(store, identifier=rdflib.URIRef("urn:kgf:tenant:globex"))
    with pytest.raises(ValueError):  # rdflib's words for any HTTP error on GET
        list(theirs.query(NAMES))


@pytest.mark.parametrize("accept,media,rdflib_format", [
    ("text/turtle", "text/turtle", "turtle"), ("application/n-triples", "application/n-triples", "nt"),
    ("application/n-quads", "application/n-quads", "nquads"), ("application/rdf+xml", "application/rdf+xml", "xml"),
    ("application/ld+json", "application/ld+json", "json-ld"), ("*/*", "text/turtle", "turtle"),
    ("text/turtle;q=0.3, application/ld+json;q=0.8, */*;q=0.1", "application/ld+json", "json-ld"),
    ("application/json", "application/ld+json", "json-ld")])
def test_construct_negotiation(live, accept, media, rdflib_format):
    import rdflib

    r = httpx.get(live["url"] + "/sparql", params={"query": CONSTRUCT}, headers={"Accept": accept},
                  auth=_basic(live, "a_analyst"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media
    g = rdflib.Dataset() if rdflib_format == "nquads" else rdflib.Graph()
    g.parse(data=r.content, format=rdflib_format)
    labels = {str(q[2]) for q in (g.quads() if rdflib_format == "nquads" else g)}
    assert "Ada Park" in labels and "Hank Scorpio" not in labels


def test_construct_not_acceptable_names_the_offered_formats(live):
    r = httpx.get(live["url"] + "/sparql", params={"query": CONSTRUCT},
                  headers={"Accept": "image/png, text/turtle;q=0"}, auth=_basic(live, "a_analyst"))
    assert r.status_code == 406
    msg = r.json()["error"]["message"]
    assert all(m in msg for m in ("text/turtle", "application/n-triples", "application/n-quads",
                                  "application/rdf+xml", "application/ld+json"))


def test_dataset_graph_uris_inside_the_tenant(live):
    url, auth = live["url"] + "/sparql", _basic(live, "a_analyst")

    def get(query, **params):
        return httpx.get(url, params={"query": query, **params}, auth=auth,
                         headers={"Accept": "application/sparql-results+json"})

    def names(r):
        assert r.status_code == 200, r.text
        return [b["name"]["value"] for b in r.json()["results"]["bindings"]]

    assert names(get(NAMES, **{"default-graph-uri": "urn:kgf:tenant:acme"})) == ["Ada Park"]
    assert names(get(NAMES, **{"default-graph-uri": "urn:kgf:ontology"})) == []  # entities are not in it
    assert get("ASK { ?c a owl:Class }", **{"default-graph-uri": "urn:kgf:ontology"}).json()["boolean"] is True
    graphs = get("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", **{"named-graph-uri": "urn:kgf:tenant:acme"})
    assert [b["g"]["value"] for b in graphs.json()["results"]["bindings"]] == ["urn:kgf:tenant:acme"]
    # only named-graph-uri given: the default graph is empty, as the protocol says
    assert names(get(NAMES, **{"named-graph-uri": "urn:kgf:tenant:acme"})) == []
    # urlencoded POST carries them too
    r = httpx.post(url, data={"query": NAMES, "default-graph-uri": "urn:kgf:tenant:acme"}, auth=auth,
                   headers={"Accept": "application/sparql-results+json"})
    assert names(r) == ["Ada Park"]
    # another tenant's graph, or any other name: 400, worded the same whether the graph exists or not
    msgs = []
    for other in ("urn:kgf:tenant:globex", "urn:kgf:tenant:nobody"):
        for param in ("default-graph-uri", "named-graph-uri"):
            r = get(NAMES, **{param: other})
            assert r.status_code == 400 and "not a graph you may query" in r.json()["error"]["message"]
            assert "Hank" not in r.text
            msgs.append(r.json()["error"]["message"].replace(other, "X"))
    assert len(set(msgs)) == 2  # one wording per parameter
    # FROM in the query text does not reach another tenant either (the protocol's dataset overrides it)
    r = get('SELECT DISTINCT ?name FROM <urn:kgf:tenant:globex> WHERE { ?e rdfs:label ?name }')
    assert "Hank Scorpio" not in r.text


def test_service_description(live):
    import rdflib

    SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    r = httpx.get(live["url"] + "/sparql", auth=_basic(live, "a_analyst"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    g = rdflib.Graph().parse(data=r.content, format="turtle")
    svc = g.value(None, rdflib.RDF.type, SD.Service)
    assert svc is not None and g.value(svc, SD.endpoint) == rdflib.URIRef(live["url"] + "/sparql")
    assert (svc, SD.supportedLanguage, SD.SPARQL11Query) in g
    formats = set(g.objects(svc, SD.resultFormat))
    wanted = ("RDF_XML", "JSON-LD", "SPARQL_Results_JSON")
    assert {rdflib.URIRef("http://www.w3.org/ns/formats/" + f) for f in wanted} <= formats
    names = {str(o) for o in g.objects(None, SD.name)}
    assert names == {"urn:kgf:tenant:acme", "urn:kgf:ontology"}
    r = httpx.get(live["url"] + "/sparql", auth=_basic(live, "a_analyst"), headers={"Accept": "application/ld+json"})
    assert r.headers["content-type"].startswith("application/ld+json")
    assert len(rdflib.Graph().parse(data=r.content, format="json-ld")) == len(g)


def test_basic_auth_refusals_and_the_rest_unchanged(live):
    url = live["url"]
    r = httpx.get(url + "/sparql", params={"query": NAMES}, auth=httpx.BasicAuth("x", "kgf_000000000000_" + "w" * 32))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith('Basic realm="kgfactory SPARQL"')
    r = httpx.get(url + "/sparql", params={"query": NAMES})
    assert r.status_code == 401 and "Basic realm=" in r.headers["www-authenticate"]
    r = httpx.get(url + "/sparql", params={"query": NAMES}, headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["error"]["message"]
    assert httpx.get(url + "/sparql", params={"query": NAMES}, auth=_basic(live, "revoked")).status_code == 401
    assert httpx.get(url + "/sparql", params={"query": NAMES}, auth=_basic(live, "a_reader")).status_code == 403
    # Basic is for /sparql only: elsewhere the API's auth is as it was
    r = httpx.get(url + "/v1/graph/schema", auth=_basic(live, "a_admin"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url + "/v1/graph/schema", headers=h(live["keys"]["a_admin"])).status_code == 200
    # refusals and Basic calls are audited as Bearer ones are
    from kgfactory.api.audit import AuditLog, audit_path

    log = AuditLog(audit_path(live["svc"].settings.data_dir))
    audit = log.read(limit=1000)
    log.close()
    assert any(e["action"] == "auth" and e["outcome"] == "denied" and e.get("target") == "/sparql" for e in audit)
    assert any(e["action"] == "sparql" and e["outcome"] == "ok" for e in audit)
