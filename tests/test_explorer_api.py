"""The explorer's API side (issue 18): entity type-ahead, the entity page, the neighbourhood graph, ontology
classes with counts, the quarantine, chunk offsets of a document and graph-shaped Cypher rows; through the
application layer and over HTTP, on the sample KB (tenant acme) next to a second tenant (globex) that shares a
name with it. Real engines throughout."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api_support import SAMPLE_TEXT_B, build, h, make_keys, wait_job

GLOBEX = SAMPLE_TEXT_B + " Marie Dubois visited Springfield to meet Hank Scorpio."


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app
    from kgfactory.cli.main import sample_dir
    from kgfactory.service.knowledge import KnowledgeService

    svc = build(tmp_path_factory.mktemp("explorer") / "data", embedder, extractor)
    keys = make_keys(svc.settings.data_dir)
    app = create_app(services=svc)
    with TestClient(app) as client:
        files = [("files", (p.name, p.read_bytes())) for p in sorted(sample_dir().iterdir())]
        r = client.post("/v1/documents", files=files, headers=h(keys["a_ingester"]))
        assert r.status_code == 202, r.text
        assert wait_job(client, r.json()["id"], keys["a_admin"])["state"] == "succeeded"
        r = client.post("/v1/documents/texts", json={"texts": [{"title": "Globex", "text": GLOBEX}]},
                        headers=h(keys["b_admin"]))
        assert wait_job(client, r.json()["id"], keys["b_admin"])["state"] == "succeeded"
        yield {"client": client, "keys": keys, "svc": svc, "acme": KnowledgeService(svc, "acme"),
               "globex": KnowledgeService(svc, "globex")}
    svc.close()


def get(kb, path, key="a_reader", **params):
    return kb["client"].get(path, params=params, headers=h(kb["keys"][key]))


def ids_of(kb, tenant):
    return {r[0] for r in kb[tenant].cypher("MATCH (e:Entity) RETURN e.id", max_rows=100_000).rows}


def entity_named(kb, tenant, name):
    [hit] = [i for i in kb[tenant].entity_search(name, limit=50).items if i.name == name and i.match == "exact"]
    return hit


# --- type-ahead ---------------------------------------------------------------------------------------
def test_type_ahead_exact_then_prefix_then_fuzzy(kb):
    acme = kb["acme"]
    res = acme.entity_search("Marie Dubois")
    assert res.items[0].name == "Marie Dubois" and res.items[0].match == "exact" and res.items[0].score == 1.0
    assert res.items[0].mentions >= 2  # she is named in more than one chunk of the sample
    kinds = [i.match for i in res.items]
    assert kinds == sorted(kinds, key=["exact", "prefix", "fuzzy"].index)  # exact, then prefix, then fuzzy
    for q in ("marie dubois", "MARIE  DUBOÏS", "Mârie Dubois"):  # case, spacing, accents
        assert entity_named(kb, "acme", "Marie Dubois").id in [i.id for i in acme.entity_search(q).items
                                                               if i.match == "exact"], q
    pre = acme.entity_search("heli")
    assert "Helios Robotics" in [i.name for i in pre.items if i.match == "prefix"]
    word = acme.entity_search("robotics")  # a later word of the name starts with it
    assert "Helios Robotics" in [i.name for i in word.items if i.match == "prefix"]
    fuzzy = acme.entity_search("Helois Robtics")  # two typos
    hit = next(i for i in fuzzy.items if i.name == "Helios Robotics")
    assert hit.match == "fuzzy" and 0 < hit.score < 0.8
    assert acme.entity_search("Zyxwvut Qqq").items == []


def test_type_ahead_label_filter_takes_subclasses(kb):
    acme = kb["acme"]
    helios = entity_named(kb, "acme", "Helios Robotics")
    onto = kb["svc"].ontology
    assert onto.is_a(helios.label, "Organization")
    assert helios.id in [i.id for i in acme.entity_search("Helios", label="Organization").items]
    assert all(onto.is_a(i.label, "Person") for i in acme.entity_search("e", label="Person", limit=50).items)
    assert helios.id not in [i.id for i in acme.entity_search("Helios", label="Person").items]


def test_type_ahead_over_http_and_tenant_isolation(kb):
    r = get(kb, "/v1/entities", q="Marie Dubois", limit=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["q"] == "Marie Dubois" and body["items"][0]["match"] == "exact"
    assert set(body["items"][0]) == {"id", "name", "label", "aliases", "mentions", "match", "score"}
    acme_ids, globex_ids = ids_of(kb, "acme"), ids_of(kb, "globex")
    assert acme_ids and globex_ids and not acme_ids & globex_ids
    # both tenants know a Marie Dubois: each sees only its own
    assert {i["id"] for i in body["items"]} <= acme_ids
    g = get(kb, "/v1/entities", key="b_admin", q="Marie Dubois").json()["items"]
    assert g and {i["id"] for i in g} <= globex_ids
    assert get(kb, "/v1/entities", q="Hank Scorpio").json()["items"] == []  # globex's only
    assert {i["id"] for i in get(kb, "/v1/entities", key="b_admin", q="Helios").json()["items"]} <= globex_ids
    assert kb["client"].get("/v1/entities", params={"q": "Marie"}).status_code == 401


@pytest.mark.parametrize("params, field", [
    ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"), ({"q": "a", "limit": 0}, "limit"),
    ({"q": "a", "limit": 51}, "limit"), ({"q": "a", "label": "NoSuchClass"}, "label"),
    ({"q": "a", "label": "Person') RETURN 1 //"}, "label"),
])
def test_type_ahead_bounds_are_400_naming_the_field(kb, params, field):
    r = get(kb, "/v1/entities", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(field) and r.json()["error"]["param"] == field


def test_hostile_queries_are_plain_text(kb):
    before = kb["acme"].cypher("MATCH (n) RETURN count(n)").rows[0][0]
    for q in (".*", "(", "[a-z]+", "\\", "%", "*", "' OR 1=1 --", "'}) DETACH DELETE n //", "$q", "`x`",
              "Marie\x00Dubois", "\u202e", "x" * 200, "é" * 200):
        r = get(kb, "/v1/entities", q=q)
        assert r.status_code == 200, (q, r.text)
    for q in (".*", "*", "%", "\\"):  # no pattern language: nothing is named by punctuation alone
        assert get(kb, "/v1/entities", q=q).json()["items"] == [], q
    assert kb["acme"].cypher("MATCH (n) RETURN count(n)").rows[0][0] == before


def test_name_table_follows_ingest_and_delete(kb):
    """A new entity is found right after its document is written, and gone after its delete."""
    acme = kb["acme"]
    assert acme.entity_search("Quillon Varga").items == []
    res = acme.ingest(texts=[("Varga", "Quillon Varga works for Helios Robotics in Lyon.")])
    assert res.ok
    hit = entity_named(kb, "acme", "Quillon Varga")
    assert kb["globex"].entity_search("Quillon Varga").items == []
    doc = next(d for d in acme.documents() if d.title == "Varga")
    acme.delete(doc.id)
    assert hit.id not in [i.id for i in acme.entity_search("Quillon Varga").items]


# --- the entity page ---------------------------------------------------------------------------------------
def test_entity_page_has_classes_aliases_relations_and_mentions(kb):
    helios = entity_named(kb, "acme", "Helios Robotics")
    r = get(kb, f"/v1/entities/{helios.id}")
    assert r.status_code == 200, r.text
    e = r.json()
    onto = kb["svc"].ontology
    assert e["classes"] == [e["label"], *onto.ancestors(e["label"])] and "Organization" in e["classes"]
    assert isinstance(e["aliases"], list)
    assert e["relations"], "the sample states typed facts about Helios Robotics"
    acme_docs = {d.id for d in kb["acme"].documents()}
    for rel in e["relations"]:
        assert rel["type"] in onto.object_properties and rel["direction"] in ("out", "in")
        assert set(rel["other"]) == {"id", "name", "label"} and rel["chunk_ids"]
        assert rel["doc_ids"] and set(rel["doc_ids"]) <= acme_docs
    founder = [x for x in e["relations"] if x["other"]["name"] == "Marie Dubois"]
    assert founder, e["relations"]
    assert e["mentions"] and all(m["doc_id"] in acme_docs and m["title"] and m["text"] for m in e["mentions"])
    assert any("Helios" in m["text"] for m in e["mentions"])
    # another tenant's entity is not found, as a missing one
    assert get(kb, f"/v1/entities/{helios.id}", key="b_admin").status_code == 404
    assert get(kb, f"/v1/entities/{helios.id}/graph", key="b_admin").status_code == 404


# --- the neighbourhood graph --------------------------------------------------------------------------------
def test_graph_depth_limit_filters_and_truncation(kb):
    helios = entity_named(kb, "acme", "Helios Robotics")
    one = get(kb, f"/v1/entities/{helios.id}/graph").json()
    assert set(one) == {"nodes", "edges", "truncated"} and one["truncated"] is False
    ids = {n["id"] for n in one["nodes"]}
    assert helios.id in ids and len(ids) == len(one["nodes"]) > 2
    assert all(helios.id in (e["source"], e["target"]) for e in one["edges"])
    assert all(e["source"] in ids and e["target"] in ids for e in one["edges"])
    assert ids <= ids_of(kb, "acme")
    neighbours = {n["id"] for n in kb["acme"].entity(helios.id, limit=500).neighbours}
    assert ids == neighbours | {helios.id}  # depth 1 is the entity and its neighbours, as the page lists them

    two = get(kb, f"/v1/entities/{helios.id}/graph", depth=2).json()
    ids2 = {n["id"] for n in two["nodes"]}
    assert ids < ids2 and all(e["source"] in ids2 and e["target"] in ids2 for e in two["edges"])
    assert ids2 <= ids_of(kb, "acme")

    cut = get(kb, f"/v1/entities/{helios.id}/graph", depth=2, limit=3).json()
    assert len(cut["nodes"]) == 3 and cut["truncated"] is True

    typed = get(kb, f"/v1/entities/{helios.id}/graph", types="foundedBy,founded,worksFor").json()
    assert typed["edges"] and {e["type"] for e in typed["edges"]} <= {"foundedBy", "founded", "worksFor"}
    people = get(kb, f"/v1/entities/{helios.id}/graph", classes="Person").json()
    onto = kb["svc"].ontology
    assert len(people["nodes"]) > 1
    assert all(onto.is_a(n["label"], "Person") for n in people["nodes"] if n["id"] != helios.id)


@pytest.mark.parametrize("params, field", [
    ({"depth": 3}, "depth"), ({"depth": 0}, "depth"), ({"limit": 0}, "limit"), ({"limit": 2001}, "limit"),
    ({"types": "NoSuchType"}, "types"), ({"types": "worksFor,x]->() DETACH DELETE n //"}, "types"),
    ({"classes": "Nope"}, "classes"), ({"classes": ",".join(["Person"] * 60 + [f"C{i}" for i in range(60)])}, "classes"),
])
def test_graph_bounds_are_400_naming_the_field(kb, params, field):
    helios = entity_named(kb, "acme", "Helios Robotics")
    r = get(kb, f"/v1/entities/{helios.id}/graph", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(field) and r.json()["error"]["param"] == field


# --- ontology classes and the quarantine -----------------------------------------------------------------------
def test_class_counts_agree_with_the_graph_and_stay_in_the_tenant(kb):
    r = get(kb, "/v1/ontology/classes")
    assert r.status_code == 200, r.text
    body = r.json()
    onto = kb["svc"].ontology
    by = {c["name"]: c for c in body["classes"]}
    assert set(by) == set(onto.classes)
    assert by["Company"]["parent"] == "Organization" and by["Person"]["parent"] is None
    assert by["Person"]["comment"] is None or isinstance(by["Person"]["comment"], str)
    assert by["Concept"]["comment"] and "Fallback" in by["Concept"]["comment"]
    for tenant, key in (("acme", "a_reader"), ("globex", "b_admin")):
        counts = {c["name"]: c for c in get(kb, "/v1/ontology/classes", key=key).json()["classes"]}
        rows = kb[tenant].cypher("MATCH (e:Entity) RETURN e.label AS c, count(e) AS n").records()
        direct = {x["c"]: x["n"] for x in rows}
        assert {n: c["count"] for n, c in counts.items() if c["count"]} == direct
        for name, c in counts.items():  # total: the class or a subclass, as the node labels say
            q = f"MATCH (e:Entity:`{name}`) RETURN count(e)"
            assert c["total"] == kb[tenant].cypher(q).rows[0][0], name
    assert by["Organization"]["total"] >= by["Company"]["count"] + by["Organization"]["count"]
    props = {p["name"]: p for p in body["properties"]}
    assert props["worksFor"]["kind"] == "object" and "Person" in props["worksFor"]["domain"]
    assert all(p["kind"] in ("object", "datatype") for p in body["properties"])


def test_quarantine_lists_the_callers_tenant_only(kb):
    q = kb["svc"].quarantine
    row = {"kind": "edge", "source_id": "s", "source_name": "S", "type": "bornIn", "target_id": "t",
           "target_name": "T", "reason": "range", "origin": "ingest"}
    q.add([{**row, "tenant": "acme", "chunk_id": "c1"}, {**row, "tenant": "globex", "chunk_id": "c2"},
           {**row, "tenant": "globex", "chunk_id": "c3"}])
    a = get(kb, "/v1/ontology/quarantine").json()
    b = get(kb, "/v1/ontology/quarantine", key="b_admin", limit=1).json()
    assert a["total"] >= 1 and {i["tenant"] for i in a["items"]} == {"acme"}
    assert b["total"] >= 2 and len(b["items"]) == 1 and b["items"][0]["tenant"] == "globex"
    assert get(kb, "/v1/ontology/quarantine", limit=0).status_code == 400


# --- documents and Cypher rows the UI draws ------------------------------------------------------------------
def test_chunk_offsets_slice_the_document_text(kb):
    from kgfactory.cli.main import sample_dir
    from kgfactory.ingest.parsers import iter_documents

    texts = {}
    for d in iter_documents(sorted(sample_dir().iterdir()), tenant="acme"):
        texts[d.title] = d.text
    checked = 0
    for info in kb["acme"].documents():
        if info.title not in texts:
            continue
        doc = get(kb, f"/v1/documents/{info.id}").json()
        for c in doc["chunks"]:
            assert {"id", "text", "start", "end"} <= set(c)
            assert texts[info.title][c["start"]:c["end"]] == c["text"]
            checked += 1
    assert checked >= 4


def test_cypher_rows_carry_ids_labels_and_relationship_ends(kb):
    r = kb["client"].post("/v1/cypher", headers=h(kb["keys"]["a_analyst"]), json={
        "query": "MATCH p = (a:Entity)-[r:foundedBy|founded]->(b:Entity) RETURN a, r, b, p LIMIT 1"})
    assert r.status_code == 200, r.text
    [[a, rel, b, path]] = r.json()["rows"]
    for n in (a, b):
        assert isinstance(n["_id"], str) and "Entity" in n["_labels"] and n["id"] and n["tenant"] == "acme"
    assert rel["_type"] in ("foundedBy", "founded") and isinstance(rel["_id"], str)
    assert (rel["_start"], rel["_end"]) == (a["_id"], b["_id"]) and rel["chunk_ids"]
    assert [n["_id"] for n in path["_nodes"]] == [a["_id"], b["_id"]]
    assert [x["_id"] for x in path["_relationships"]] == [rel["_id"]]


def test_sdk_and_cli_take_the_same_calls(kb):
    from kgfactory.sdk.local import KnowledgeBase

    local = KnowledgeBase(kb["svc"], tenant="acme", own=False)
    res = local.entity_search("Marie Dubois", limit=3)
    assert res.items[0].match == "exact"
    g = local.entity_graph(res.items[0].id, types=["founded", "foundedBy"])
    assert {e.type for e in g.edges} <= {"founded", "foundedBy"}
    assert local.ontology_classes().classes and local.quarantine(limit=1).total >= 0
    from kgfactory.sdk.errors import ValidationError

    with pytest.raises(ValidationError, match="invalid_request: q: "):
        local.entity_search("")


def test_cli_entities_search(tmp_path):
    import json

    from typer.testing import CliRunner

    from kgfactory.cli.main import app

    d, f = str(tmp_path / "data"), tmp_path / "globex.txt"
    f.write_text(GLOBEX)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(f), "-d", d]).exit_code == 0
    res = runner.invoke(app, ["entities", "search", "hank scorpoi", "-d", d, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["items"][0]["name"] == "Hank Scorpio" and body["items"][0]["match"] in ("prefix", "fuzzy")
    res = runner.invoke(app, ["entities", "search", "Hank", "-d", d])
    assert res.exit_code == 0 and "Hank Scorpio" in res.output
    res = runner.invoke(app, ["entities", "search", "", "-d", d])
    assert res.exit_code != 0 and "q:" in res.output


def test_sdk_client_reads_the_same_shapes_over_http(kb):
    from api_support import LiveServer
    from kgfactory.api import create_app
    from kgfactory.sdk import Client

    live = LiveServer(create_app(services=kb["svc"])).start()
    try:
        _client_calls(kb, Client(live.url, kb["keys"]["a_reader"], retries=0))
    finally:
        live.stop()


def _client_calls(kb, client):
    from kgfactory.sdk.errors import NotFoundError, ValidationError

    with client as c:
        res = c.entity_search("marie dubois", limit=3)
        assert res.items[0].name == "Marie Dubois" and res.items[0].match == "exact"
        eid = res.items[0].id
        g = c.entity_graph(eid, depth=2, limit=5, classes=["Person", "Organization"])
        assert 1 < len(g.nodes) <= 5 and any(n.id == eid for n in g.nodes)
        page = c.entity(eid)
        assert page.classes[0] == page.label and page.mentions
        classes = c.ontology_classes()
        assert sum(x.count for x in classes.classes) == len(ids_of(kb, "acme"))
        assert c.quarantine(limit=5).total >= 0
        with pytest.raises(ValidationError, match="limit"):
            c.entity_search("m", limit=99)
        with pytest.raises(NotFoundError):
            c.entity_graph("ent_nope")
