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
