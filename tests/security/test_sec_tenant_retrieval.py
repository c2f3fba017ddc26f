"""Issue 14, defect 1: retrieval never shows one tenant another tenant's entities, chunks or scores.

Tenant globex has entities whose exact names tenant acme asks about. Before the fix the question's name match
ran over every tenant's entities, so acme's seeds (and the graph traversal) carried globex's entity ids, names
and classes. Checked through every way a question comes in: /v1/query (JSON and streaming), /v1/search,
/v1/chat/completions, the in-process KnowledgeBase and the HTTP Client, in vector, graph and hybrid modes.
Real engines and models throughout.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers (api_support)

from api_support import LiveServer, build, free_port, h, make_keys  # noqa: E402

pytestmark = pytest.mark.timeout(600)

ACME = {
    "helios.txt": "Helios Robotics was founded by Marie Dubois in Lyon. Tomas Berg works for Helios Robotics as its "
                  "chief engineer. Helios Robotics builds warehouse robots that carry parcels.",
    "nordlicht.txt": "Anna Lind works for Nordlicht Logistics in Hamburg. Nordlicht Logistics ships machine parts "
                     "across Europe and uses Helios Robotics robots in its warehouses.",
}
GLOBEX = {
    "quorvath.txt": "Quorvath Industries was founded by Selene Marchetti in Port Varnholm. Quorvath Industries "
                    "builds tidal turbines. Selene Marchetti works for Quorvath Industries as its chief executive.",
    "varnholm.txt": "Port Varnholm is a harbour town. Dariusz Okonkwo works for Quorvath Industries in Port "
                    "Varnholm and designs its turbine blades.",
}
# acme asks, by exact name, about things only globex has
QUESTIONS = ["Who founded Quorvath Industries?", "Where does Selene Marchetti work?",
             "What does Dariusz Okonkwo design in Port Varnholm?"]
MODES = ("vector", "graph", "hybrid")


@pytest.fixture(scope="module")
def world(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app

    root = tmp_path_factory.mktemp("tenants")
    svc = build(root / "data", embedder, extractor)
    keys = make_keys(svc.settings.data_dir)
    for tenant, docs in (("acme", ACME), ("globex", GLOBEX)):
        d = root / tenant
        d.mkdir()
        for name, text in docs.items():
            (d / name).write_text(text)
        run = svc.pipeline.ingest([str(d)], tenant=tenant)
        assert run.documents_added == len(docs)
    g = svc.graph
    b_entities = g.export_entities("globex")
    a_names = {e.name.lower() for e in g.export_entities("acme")}
    b = {"entity_ids": {e.id for e in b_entities},
         "names": {e.name for e in b_entities if e.name.lower() not in a_names},
         "chunk_ids": {c.id for c in g.export_chunks("globex")},
         "doc_ids": {d.id for d in g.list_documents(tenant="globex")}}
    assert b["entity_ids"] and b["chunk_ids"] and {"Quorvath Industries", "Selene Marchetti"} <= b["names"]
    app = create_app(services=svc)
    with TestClient(app) as client:
        yield {"svc": svc, "client": client, "keys": keys, "b": b, "app": app}
    svc.close()


def assert_clean(world, payload, where: str) -> None:
    """No id of globex's anywhere in the serialised payload; no globex-only name in seeds or evidence, and no
    globex chunk or entity in the chunks."""
    b = world["b"]
    data = payload if isinstance(payload, (dict, list)) else json.loads(payload)
    text = json.dumps(data)
    leaked = [x for x in (*b["entity_ids"], *b["chunk_ids"], *b["doc_ids"]) if x in text]
    assert not leaked, f"{where}: tenant globex ids in tenant acme's answer: {leaked}"
    if isinstance(data, dict):
        names = [s["name"] for s in data.get("seeds") or []]
        names += [x for e in data.get("evidence") or [] for hop in e["hops"] for x in (hop[0], hop[2])]
        names += [e["name"] for c in data.get("chunks") or [] for e in c.get("entities") or []]
        assert not set(names) & b["names"], f"{where}: globex names {set(names) & b['names']}"
        assert all("Quorvath" not in (c.get("text") or "") for c in data.get("chunks") or []), where


def test_globex_finds_its_own_entities_by_name(world):
    """The control: the name match does find these entities for their own tenant (so acme's checks bite)."""
    r = world["svc"].retriever.search(QUESTIONS[0], mode="graph", top_k=3, filters={"tenant": "globex"})
    assert {s.id for s in r.seeds} & world["b"]["entity_ids"]
    assert r.chunks and all(c.doc_id in world["b"]["doc_ids"] for c in r.chunks)


@pytest.mark.parametrize("mode", MODES)
def test_search_and_query_json(world, mode):
    c, k = world["client"], world["keys"]
    for q in QUESTIONS:
        r = c.post("/v1/search", json={"question": q, "mode": mode, "top_k": 10}, headers=h(k["a_reader"]))
        assert r.status_code == 200, r.text
        assert_clean(world, r.json(), f"/v1/search {mode} {q!r}")
        r = c.post("/v1/query", json={"question": q, "mode": mode, "top_k": 10}, headers=h(k["a_reader"]))
        assert r.status_code == 200, r.text
        assert_clean(world, r.json(), f"/v1/query {mode} {q!r}")


def test_query_stream_and_chat(world):
    c, k = world["client"], world["keys"]
    for q in QUESTIONS:
        with c.stream("POST", "/v1/query", json={"question": q, "stream": True}, headers=h(k["a_reader"])) as r:
            assert r.status_code == 200
            text = "".join(r.iter_text())
        events = [blk for blk in text.strip().split("\n\n") if blk]
        assert events
        for blk in events:
            data = blk.split("data: ", 1)[1] if "data: " in blk else "null"
            assert_clean(world, json.loads(data) if data.startswith(("{", "[")) else [data], f"stream {q!r}")
        r = c.post("/v1/chat/completions", json={"model": "kgfactory", "messages": [{"role": "user", "content": q}]},
                   headers=h(k["a_reader"]))
        assert r.status_code == 200, r.text
        assert_clean(world, r.json(), f"chat {q!r}")
        assert "Quorvath Industries builds" not in r.text


@pytest.mark.parametrize("mode", MODES)
def test_sdk_knowledge_base(world, mode):
    from kgfactory.sdk.local import KnowledgeBase

    kb = KnowledgeBase(world["svc"], tenant="acme", own=False)
    for q in QUESTIONS:
        assert_clean(world, kb.search(q, mode=mode, top_k=10).model_dump(mode="json"), f"kb.search {mode}")
        assert_clean(world, kb.ask(q, mode=mode, top_k=10).model_dump(mode="json"), f"kb.ask {mode}")


def test_sdk_client(world):
    from kgfactory.sdk import Client

    live = LiveServer(world["app"], port=free_port()).start()
    try:
        with Client(live.url, world["keys"]["a_reader"]) as cl:
            for q in QUESTIONS:
                for mode in MODES:
                    assert_clean(world, cl.search(q, mode=mode, top_k=10).model_dump(mode="json"), f"client {mode}")
                assert_clean(world, cl.ask(q).model_dump(mode="json"), "client.ask")
    finally:
        live.stop()


def test_no_graph_mass_reaches_another_tenant(world):
    """Structure and traversal: no edge or mention joins two tenants, so personalised PageRank started from
    acme's seeds and passages leaves every globex node at exactly zero."""
    idx = world["svc"].retriever.index()
    et = np.asarray(idx.entity_tenant, dtype=object)
    ct = np.asarray(idx.chunk_tenant, dtype=object)
    assert set(et) == {"acme", "globex"} == set(ct)
    adj = idx.adjacency.tocoo()
    assert (et[adj.row] == et[adj.col]).all()
    men = idx.mentions.tocoo()
    assert (ct[men.row] == et[men.col]).all()
    restart = np.concatenate([(et == "acme").astype(float), (ct == "acme").astype(float)])[:, None]
    mass = idx.ppr_batch(restart, damping=0.85)[:, 0]
    outside = np.concatenate([et != "acme", ct != "acme"])
    assert mass[~outside].sum() > 0.99 and mass[outside].max() == 0.0
    scope = idx.entity_scope({"acme"})
    assert scope is not None and not scope[et == "globex"].any() and scope[et == "acme"].all()
