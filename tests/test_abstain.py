"""Abstention: a question the knowledge base cannot answer gets "not in the knowledge base" with the nearest sources
as possibly related (no citations), in every interface; an answerable one is answered; threshold 0 turns it off.
Real engines over the bundled sample corpus."""
from __future__ import annotations

import json

import pytest
from api_support import LiveServer, build
from openai_scripted_server import Reply, ScriptedOpenAIServer

from kgfactory.settings import Settings

pytestmark = pytest.mark.timeout(300)

OUT = "What is the boiling point of tungsten?"
IN = "Who founded Helios Robotics?"


@pytest.fixture(scope="module")
def svc(tmp_path_factory, embedder, extractor, sample_dir_path):
    s = build(tmp_path_factory.mktemp("abstain") / "data", embedder, extractor, api_open=True)
    s.pipeline.ingest([str(sample_dir_path)])
    yield s
    s.close()


@pytest.fixture(scope="module")
def sample_dir_path():
    from kgfactory.cli.main import sample_dir

    return sample_dir()


@pytest.fixture(scope="module")
def kb(svc):
    from kgfactory import KnowledgeBase

    return KnowledgeBase(svc, own=False)


def test_out_of_corpus_question_abstains_and_lists_related_sources(kb):
    threshold = Settings().abstain_threshold
    assert threshold > 0  # on by default
    res = kb.ask(OUT)
    assert res.abstained and res.kind == "none" and res.citations == []
    assert res.answer.startswith("Not in the knowledge base") and "Possibly related:" in res.answer
    assert res.support is not None and res.support < threshold
    titles = {d.title for d in kb.documents()}
    assert res.related and {r.title for r in res.related} <= titles
    assert len({r.doc_id for r in res.related}) == len(res.related)  # one per document
    assert [r.score for r in res.related] == sorted((r.score for r in res.related), reverse=True)
    assert all(r.title in res.answer for r in res.related)
    assert "KGF_ABSTAIN_THRESHOLD" in (res.note or "")


def test_answerable_question_is_answered(kb):
    res = kb.ask(IN)
    assert not res.abstained and res.kind == "extractive" and res.related == []
    assert res.citations and "Marie Dubois" in res.answer
    assert res.support is not None and res.support >= Settings().abstain_threshold


def test_threshold_zero_turns_abstention_off(kb, svc, monkeypatch):
    monkeypatch.setenv("KGF_ABSTAIN_THRESHOLD", "0")
    assert Settings().abstain_threshold == 0
    before = svc.answerer.abstain_below
    svc.answerer.abstain_below = 0.0  # what bootstrap passes for KGF_ABSTAIN_THRESHOLD=0
    try:
        res = kb.ask(OUT)
    finally:
        svc.answerer.abstain_below = before
    assert not res.abstained and res.kind == "extractive" and res.citations
    assert res.support is not None and res.support < before  # the same low support, answered anyway


def test_generating_answerer_abstains_without_calling_the_llm(svc, embedder, tmp_path):
    from kgfactory.bootstrap import build_llm
    from kgfactory.llm.answerer import GeneratingAnswerer
    from kgfactory.retrieval.answer import ExtractiveAnswerer

    server = ScriptedOpenAIServer().start()
    try:
        llm = build_llm(Settings(data_dir=tmp_path / "d", llm_base_url=server.url, llm_model="m1"))
        gen = GeneratingAnswerer(llm, ExtractiveAnswerer(embedder, abstain_below=Settings().abstain_threshold),
                                 ground=None)
        out = svc.retriever.search(OUT)
        a = gen.answer(out)
        items = list(gen.stream(out))
        assert a.abstained and a.citations == [] and a.model is None and a.text.startswith("Not in the knowledge")
        assert items[0] == items[-1].text and items[-1].abstained
        assert server.chat_requests() == []  # no tokens spent on context that cannot hold the answer
        server.replies = [Reply(text="Marie Dubois founded Helios Robotics [1].", usage=(50, 9))]
        b = gen.answer(svc.retriever.search(IN))
        assert b.kind == "generated" and not b.abstained and b.support and len(server.chat_requests()) == 1
    finally:
        server.stop()


def test_api_and_sdk_client_show_it(svc):
    from kgfactory.api import create_app
    from kgfactory.sdk import Client

    server = LiveServer(create_app(services=svc)).start()
    try:
        import httpx

        body = httpx.post(f"{server.url}/v1/query", json={"question": OUT}, timeout=60).json()
        assert body["abstained"] is True and body["citations"] == [] and body["related"]
        assert body["answer"].startswith("Not in the knowledge base")
        with httpx.stream("POST", f"{server.url}/v1/query", json={"question": OUT, "stream": True}, timeout=60) as r:
            text = "".join(r.iter_text())
        answer = json.loads(text.split("event: answer\ndata: ")[1].split("\n")[0])
        assert answer["abstained"] is True and answer["citations"] == []
        chat = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                          json={"model": "kgfactory", "messages": [{"role": "user", "content": OUT}]}).json()
        assert "Not in the knowledge base" in chat["choices"][0]["message"]["content"]
        assert chat["kgf"]["abstained"] is True and chat["kgf"]["related"] and chat["citations"] == []
        assert "Extractive answer" not in chat["choices"][0]["message"]["content"]  # quoted nothing: no marker
        with Client(server.url) as c:
            res = c.ask(OUT)
            assert res.abstained and res.citations == [] and res.related[0].chunk_id
            assert not c.ask(IN).abstained
    finally:
        server.stop()


def test_cli_prints_not_in_the_knowledge_base(tmp_path, sample_dir_path):
    from typer.testing import CliRunner

    from kgfactory.cli.main import app

    runner = CliRunner()
    d = str(tmp_path / "cli")
    assert runner.invoke(app, ["ingest", str(sample_dir_path), "-d", d]).exit_code == 0
    res = runner.invoke(app, ["ask", OUT, "-d", d])
    assert res.exit_code == 0, res.output
    assert "Not in the knowledge base." in res.stdout and "Possibly related:" in res.stdout
    assert "Helios Robotics" in res.stdout.split("Possibly related:")[1]
    out = json.loads(runner.invoke(app, ["ask", OUT, "-d", d, "--json"]).stdout)
    assert out["abstained"] is True and out["citations"] == [] and out["related"]
