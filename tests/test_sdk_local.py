"""KnowledgeBase (in-process) and Client (through the server) give the same results: one scenario through both,
each over its own fresh data directory, sharing the session's loaded models. Plus the light-import guarantees."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from api_support import LiveServer, SAMPLE_TEXT_B, build, free_port

from kgfactory.sdk import Client, KGFactoryError, NotFoundError, ValidationError

HELIOS = ("Helios Robotics was founded by Marie Dubois in Lyon. Tomas Berg works for Helios Robotics as its chief "
          "engineer. Helios Robotics builds warehouse robots.")
PEOPLE = b"Anna Lind works for Nordlicht Logistics. Nordlicht Logistics uses Milvus as its vector database."
Q = "Who founded Helios Robotics?"


def scenario(kb) -> dict:
    """The same calls on a Client or a KnowledgeBase; returns what must match (paths and ids aside)."""
    out: dict = {}
    seen = []
    res = kb.ingest(texts=[("Helios", HELIOS), ("Globex", SAMPLE_TEXT_B)], files=[("people.txt", PEOPLE)],
                    tags=["parity"], progress=seen.append)
    out["ingest"] = (res.ok, res.documents_added, res.errors, seen[-1].documents_processed,
                     seen[-1].jobs_done == seen[-1].jobs_total)  # the client sends files and texts as 2 jobs
    a = kb.ask(Q)
    out["ask"] = (a.answer, a.kind, [(c.title, c.start, c.end, c.text) for c in a.citations],
                  [s.name for s in a.seeds])
    items = list(kb.ask_stream(Q))
    out["stream"] = ("".join(i for i in items if isinstance(i, str)).strip(), items[-1].answer.strip())
    s = kb.search("Which vector database does Nordlicht Logistics use?", mode="vector", top_k=3)
    out["search"] = [(c.title, c.start, c.end, round(c.score, 4), sorted(e.name for e in c.entities)) for c in s.chunks]
    out["documents"] = sorted((d.title, d.status, tuple(d.tags or ())) for d in kb.documents())
    out["cypher"] = kb.cypher("MATCH (e:Entity) RETURN e.name AS name, e.label AS label ORDER BY name").records()
    helios = next(x for x in a.seeds if x.name == "Helios Robotics")
    e = kb.entity(helios.id)
    out["entity"] = (e.name, e.label, sorted(n.get("name") or "" for n in e.neighbours), len(e.mentions))
    doc = next(d for d in kb.documents() if d.title == "Globex")
    detail = kb.document(doc.id)
    out["document"] = ([c["text"] for c in detail.chunks], sorted(x["name"] for x in detail.entities))
    d = kb.delete(doc.id)
    out["delete"] = (d.deleted, d.chunks, d.orphaned_entities_removed)
    out["after"] = sorted(x.title for x in kb.documents())
    out["ontology"] = sorted(kb.ontology()["classes"])
    out["schema"] = kb.graph_schema()["relationship_types"]
    for call, err in [(lambda: kb.document(doc.id), NotFoundError), (lambda: kb.entity("ent_nope"), NotFoundError),
                      (lambda: kb.cypher("MATCH (n) DELETE n"), ValidationError),
                      (lambda: kb.ask(Q, mode="psychic"), ValidationError)]:
        with pytest.raises(err) as ei:
            call()
        out.setdefault("errors", []).append((type(ei.value).__name__, ei.value.status))
    return out


def test_knowledge_base_and_client_agree(tmp_path, embedder, extractor):
    from kgfactory import KnowledgeBase
    from kgfactory.api import create_app

    svc_local = build(tmp_path / "local", embedder, extractor)
    svc_server = build(tmp_path / "server", embedder, extractor, api_open=True)
    try:
        with KnowledgeBase(svc_local) as kb:
            local = scenario(kb)
        server = LiveServer(create_app(services=svc_server), port=free_port()).start()
        try:
            with Client(server.url, "") as c:
                remote = scenario(c)
        finally:
            server.stop()
    finally:
        svc_local.close()
        svc_server.close()
    assert local["ingest"] == (True, 3, [], 3, True)
    assert "Marie Dubois" in local["ask"][0] and local["ask"][2]
    assert local["stream"][0] == local["stream"][1]
    assert local["search"][0][0] == "people"  # the file's title; Milvus is in it
    assert local["delete"][0] and local["after"] == ["Helios", "people"]
    assert [e for e, _ in local["errors"]] == ["NotFoundError", "NotFoundError", "ValidationError", "ValidationError"]
    for key in local:
        assert local[key] == remote[key], key


def test_open_refuses_a_data_dir_held_by_a_server(tmp_path):
    from kgfactory import KnowledgeBase
    from kgfactory.api.serverfile import announce

    announce(tmp_path, "http://127.0.0.1:8765")
    with pytest.raises(KGFactoryError, match=r"Client\('http://127.0.0.1:8765'\)"):
        KnowledgeBase.open(tmp_path)


# (not rich: httpx imports its CLI, which uses rich, when rich is installed; a light install has no rich)
HEAVY = ["torch", "numpy", "scipy", "pymilvus", "milvus_lite", "spacy", "sentence_transformers", "transformers",
         "falkordb", "redis", "rdflib", "fastapi", "starlette", "uvicorn", "typer", "pydantic_settings",
         "langchain_core", "openai", "neo4j"]


def test_sdk_imports_light():
    code = ("import sys, kgfactory, kgfactory.sdk as s; c = s.Client('http://127.0.0.1:1', 'k'); c.close(); "
            "a = s.AsyncClient('http://127.0.0.1:1'); import json; "
            f"print(json.dumps(sorted(set(sys.modules) & set({HEAVY!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KGF_API_KEY": ""})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_kgf_without_the_server_extra_says_what_to_install():
    """A light install: block the server modules' imports for real, then run the console script's entry."""
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('typer', 'rich', 'pydantic_settings'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import importlib.util\n"
            "_find = importlib.util.find_spec\n"
            "def find_spec(name, package=None):\n"
            "    try:\n"
            "        return _find(name, package)\n"
            "    except ModuleNotFoundError:\n"
            "        return None\n"
            "importlib.util.find_spec = find_spec\n"
            "from kgfactory.cli.entry import main\n"
            "main()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pip install 'kgfactory[server,nlp]'" in out.stderr and "Client" in out.stderr
    ok = subprocess.run([sys.executable, "-c", "from kgfactory.cli.entry import main; import sys; "
                         "sys.argv = ['kgf', '--help']; main()"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "serve" in ok.stdout


@pytest.mark.parametrize("blocked", [("fastapi", "starlette", "uvicorn"), tuple(HEAVY)],
                         ids=["without-the-web-stack", "light"])
def test_open_on_a_light_install_says_what_to_install(tmp_path, blocked):
    """`from kgfactory.sdk import Client, KnowledgeBase` works without the server parts, and open() raises the SDK's
    error with the install hint (the API's web stack missing alone used to give a bare ModuleNotFoundError)."""
    code = ("import sys, importlib.abc, json\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {blocked!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from kgfactory.sdk import Client, KGFactoryError, KnowledgeBase\n"
            "try:\n"
            "    KnowledgeBase.open(sys.argv[1], spacy_model='blank')\n"
            "except KGFactoryError as e:\n"
            "    print(json.dumps({'type': type(e).__name__, 'message': str(e)}))\n")
    kb_dir = tmp_path / "kb"
    out = subprocess.run([sys.executable, "-c", code, str(kb_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["type"] == "KGFactoryError" and "pip install 'kgfactory[server]'" in got["message"], got
    assert not kb_dir.exists()
