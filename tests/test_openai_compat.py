"""The official `openai` client, unmodified, against a live `kgf serve` app on loopback over the bundled sample
corpus: models.retrieve, embeddings (the KB's own embedder), multi-turn chat with and without an LLM (the LLM a
scripted OpenAI-protocol server: tests/openai_scripted_server.py), refused parameters, the extractive marker,
streaming."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from api_support import LiveServer, build, free_port, make_keys
from openai_scripted_server import Reply, ScriptedOpenAIServer

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.timeout(600)

MARK = "[Extractive answer:"
FIRST = "Who founded Helios Robotics?"
FOLLOW_UP = "Where is it headquartered?"


def _serve(tmp, embedder, extractor, **settings):
    from kgfactory.api import create_app
    from kgfactory.cli.main import sample_dir
    from kgfactory.service.knowledge import KnowledgeService

    svc = build(tmp / "data", embedder, extractor, **settings)
    keys = make_keys(svc.settings.data_dir)
    res = KnowledgeService(svc, "acme").ingest([str(sample_dir())])
    assert res.documents_added >= 4 and not res.errors
    port = free_port()
    server = LiveServer(create_app(services=svc, announce_url=f"http://127.0.0.1:{port}"), port=port).start()
    return svc, keys, server


@pytest.fixture(scope="module")
def live(tmp_path_factory, embedder, extractor):
    """No LLM configured: answers are extractive."""
    svc, keys, server = _serve(tmp_path_factory.mktemp("oai"), embedder, extractor)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=keys["a_reader"], max_retries=0, timeout=120)
    yield {"client": client, "svc": svc, "keys": keys, "url": server.url}
    server.stop()
    svc.close()


@pytest.fixture(scope="module")
def llm_server():
    s = ScriptedOpenAIServer(model="m1").start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def live_llm(tmp_path_factory, embedder, extractor, llm_server):
    """An LLM configured (the scripted server), so chat goes condense -> retrieve -> generate -> gate."""
    svc, keys, server = _serve(tmp_path_factory.mktemp("oai-llm"), embedder, extractor, llm_base_url=llm_server.url,
                               llm_model="m1", llm_backoff_s=0.01, llm_max_retries=0)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=keys["a_reader"], max_retries=0, timeout=120)
    yield {"client": client, "svc": svc, "server": llm_server}
    server.stop()
    svc.close()


def _user(text):
    return {"role": "user", "content": text}


def _first_sentence(content: str) -> str:
    return re.split(r"(?<=[.!?])\s|\[\d+\]", content, maxsplit=1)[0]


def _streamed(stream) -> tuple[str, object]:
    parts, last = [], None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            if chunk.choices[0].finish_reason:
                last = chunk
    return "".join(parts), last


# --- models ----------------------------------------------------------------------------------------
def test_models_retrieve(live):
    c = live["client"]
    m = c.models.retrieve("kgfactory")
    assert m.id == "kgfactory" and m.object == "model" and m.owned_by == "kgfactory"
    assert c.models.retrieve("kgfactory-graph").id == "kgfactory-graph"
    assert {m.id for m in c.models.list()} >= {"kgfactory", "kgfactory-vector", "kgfactory-graph"}
    with pytest.raises(openai.NotFoundError) as e:
        c.models.retrieve("gpt-4o")
    assert e.value.param == "model" and "/v1/models" in e.value.message
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live["url"] + "/v1", api_key="wrong", max_retries=0).models.retrieve("kgfactory")


# --- embeddings ------------------------------------------------------------------------------------
def test_embeddings_are_the_kb_embedders(live):
    c, embedder = live["client"], live["svc"].embedder
    text = "Where is Helios Robotics headquartered?"
    want = embedder.embed([text])[0]
    # the client's default asks for base64 and decodes it; floats asked explicitly: both are the KB's vector
    for resp in (c.embeddings.create(model="kgfactory", input=text),
                 c.embeddings.create(model="kgfactory", input=text, encoding_format="float")):
        got = np.asarray(resp.data[0].embedding, dtype=np.float32)
        assert got.shape == (embedder.dim,) and np.array_equal(got, want)
        assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens == resp.usage.prompt_tokens
        assert resp.model == live["svc"].embedder.model_id
    raw = c.embeddings.create(model="kgfactory", input=text, encoding_format="base64").data[0].embedding
    assert np.array_equal(np.frombuffer(base64.b64decode(raw), dtype="<f4"), want)
    texts = ["Lyon is a city in France.", "Marie Dubois founded Helios Robotics.", "Oslo is the capital of Norway."]
    resp = c.embeddings.create(model=resp.model, input=texts, dimensions=embedder.dim)  # the embedder's own id too
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert np.allclose(np.asarray([d.embedding for d in resp.data]), embedder.embed(texts), atol=1e-5)


@pytest.mark.parametrize("kw, param, words", [
    ({"input": [[101, 2054, 102]]}, "input", "token-id arrays"),
    ({"input": [101, 2054, 102]}, "input", "token-id arrays"),
    ({"input": "x", "dimensions": 64}, "dimensions", "dimensional"),
    ({"input": ["x"] * 257}, "input", "at most 256"),
    ({"input": "x" * 8001}, "input", "at most 8000 characters"),
    ({"input": ""}, "input", "non-empty"),
])
def test_embeddings_refusals_name_the_field(live, kw, param, words):
    with pytest.raises(openai.BadRequestError) as e:
        live["client"].embeddings.create(model="kgfactory", **kw)
    assert e.value.status_code == 400 and e.value.param == param and words in e.value.message


def test_embeddings_unknown_model_and_auth(live):
    with pytest.raises(openai.NotFoundError) as e:
        live["client"].embeddings.create(model="text-embedding-3-small", input="x")
    assert e.value.param == "model"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live["url"] + "/v1", api_key="wrong", max_retries=0).embeddings.create(model="kgfactory",
                                                                                                   input="x")


# --- chat without an LLM: extractive, marked; earlier turns resolve the follow-up -------------------
def test_follow_up_answers_about_the_same_company_without_llm(live):
    c = live["client"]
    first = c.chat.completions.create(model="kgfactory", messages=[_user(FIRST)])
    history = [_user(FIRST), {"role": "assistant", "content": first.choices[0].message.content}]
    resp = c.chat.completions.create(model="kgfactory", messages=[*history, _user(FOLLOW_UP)])
    content = resp.choices[0].message.content
    assert "Lyon" in _first_sentence(content), content
    kgf = resp.model_extra["kgf"]
    assert "Helios Robotics" in kgf["question"] and kgf["question"].startswith(FOLLOW_UP)
    # streamed the same way
    text, last = _streamed(c.chat.completions.create(model="kgfactory", stream=True,
                                                     messages=[*history, _user(FOLLOW_UP)]))
    assert "Lyon" in _first_sentence(text) and last.model_extra["kgf"]["question"] == kgf["question"]


def test_extractive_answer_says_so(live):
    c = live["client"]
    resp = c.chat.completions.create(model="kgfactory", messages=[_user(FIRST)])
    content = resp.choices[0].message.content
    assert MARK in content and content.index(MARK) < content.index("Sources:")
    assert resp.system_fingerprint == "kgfactory-extractive"
    assert resp.model_extra["kgf"]["kind"] == "extractive" and resp.model_extra["kgf"]["extractive"] is True
    text, last = _streamed(c.chat.completions.create(model="kgfactory", stream=True, messages=[_user(FIRST)]))
    assert MARK in text and text.index(MARK) < text.index("Sources:")
    assert last.system_fingerprint == "kgfactory-extractive" and last.model_extra["kgf"]["kind"] == "extractive"


@pytest.mark.parametrize("kw, param", [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
])
def test_unsupported_parameters_refused_by_name(live, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        live["client"].chat.completions.create(model="kgfactory", messages=[_user(FIRST)], **kw)
    assert e.value.status_code == 400 and e.value.param == param and param in e.value.message


def test_harmless_parameters_accepted(live):
    resp = live["client"].chat.completions.create(
        model="kgfactory", messages=[_user(FIRST)], n=1, temperature=0.3, top_p=0.9, user="u1", seed=7,
        max_tokens=50, stop=["\n\n\n"], response_format={"type": "text"}, tool_choice="none")
    assert "Marie Dubois" in resp.choices[0].message.content


def test_non_text_parts_and_no_question_refused(live):
    c = live["client"]
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="kgfactory", messages=[{"role": "user", "content": [
            {"type": "text", "text": FIRST}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}])
    assert e.value.param == "messages" and "image_url" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="kgfactory", messages=[{"role": "system", "content": "be brief"}])
    assert "user message" in e.value.message


# --- chat with an LLM: the condense step, system messages as instructions ----------------------------
STANDALONE = "Where is Helios Robotics headquartered?"


def _scripted_llm(req: dict) -> Reply:
    """Condense requests get the standalone question; answer requests cite the source that says it."""
    prompt = req["messages"][-1]["content"]
    if prompt.rstrip().endswith("Standalone question:"):
        return Reply(text=f"Standalone question: {STANDALONE}\n")
    blocks = re.split(r"^\[(\d+)\] ", prompt.split("Answer the question below")[0], flags=re.M)
    n = next(num for num, block in zip(blocks[1::2], blocks[2::2]) if "headquartered in Lyon" in block)
    return Reply(text=f"Helios Robotics is headquartered in Lyon [{n}].")


def test_follow_up_condensed_by_the_llm_and_system_messages_reach_it(live_llm):
    c, server = live_llm["client"], live_llm["server"]
    server.replies, server.default = [], _scripted_llm
    messages = [{"role": "system", "content": "Answer in a formal tone."}, _user(FIRST),
                {"role": "assistant", "content": "Marie Dubois founded Helios Robotics [1].\n\nSources:\n[1] helios"},
                _user(FOLLOW_UP)]
    for stream in (False, True):
        server.requests.clear()
        if stream:
            content, last = _streamed(c.chat.completions.create(model="kgfactory", messages=messages, stream=True))
        else:
            last = c.chat.completions.create(model="kgfactory", messages=messages)
            content = last.choices[0].message.content
        condense, answer = server.chat_requests()
        shown = condense["messages"][-1]["content"]
        assert FIRST in shown and "Marie Dubois founded Helios Robotics [1]." in shown and FOLLOW_UP in shown
        assert "Sources:" not in shown  # the route's own source list is not conversation
        assert f"Question: {STANDALONE}" in answer["messages"][-1]["content"]
        assert "Answer in a formal tone." in answer["messages"][0]["content"]
        assert bool(answer.get("stream")) is stream
        assert content.startswith("Helios Robotics is headquartered in Lyon") and MARK not in content
        assert last.system_fingerprint == "kgfactory-generated"
        assert last.model_extra["kgf"]["question"] == STANDALONE and last.model_extra["kgf"]["kind"] == "generated"
        if not stream:  # tokens of both calls (the scripted server reports 20 + 5 each)
            assert last.usage.total_tokens == 50


def test_llm_answer_that_falls_back_is_marked(live_llm):
    c, server = live_llm["client"], live_llm["server"]
    server.requests.clear()
    server.replies, server.default = [], (lambda req: Reply(text="Helios Robotics is headquartered in Paris [1]."))
    resp = c.chat.completions.create(model="kgfactory", messages=[_user(STANDALONE)])
    content = resp.choices[0].message.content
    assert resp.model_extra["kgf"]["kind"] == "extractive" and "Paris" not in content
    assert MARK in content and resp.system_fingerprint == "kgfactory-extractive"
    assert len(server.chat_requests()) == 1  # one turn: no condense step


def test_condense_failure_falls_back_to_carried_entities(live_llm):
    """The LLM refuses the condense request: the previous question's entities resolve the follow-up instead."""
    c, server = live_llm["client"], live_llm["server"]
    server.requests.clear()
    server.replies, server.default = [Reply(status=500)], _scripted_llm
    resp = c.chat.completions.create(model="kgfactory", messages=[_user(FIRST), _user(FOLLOW_UP)])
    assert resp.choices[0].message.content.startswith("Helios Robotics is headquartered in Lyon")
    question = resp.model_extra["kgf"]["question"]
    assert question.startswith(FOLLOW_UP) and "Helios Robotics" in question
    assert len(server.chat_requests()) == 2 and f"Question: {question}" in server.chat_requests()[1]["messages"][-1]["content"]


def test_stream_whose_llm_fails_before_any_token_still_sends_the_answer(live_llm):
    c, server = live_llm["client"], live_llm["server"]
    server.replies, server.default = [Reply(status=503)], _scripted_llm
    text, last = _streamed(c.chat.completions.create(model="kgfactory", stream=True, messages=[_user(STANDALONE)]))
    assert "Helios Robotics is headquartered in Lyon." in text.split("Sources:")[0]  # the quoted answer itself
    assert last.model_extra["kgf"]["kind"] == "extractive" and MARK in text


def test_system_messages_bounded(live):
    with pytest.raises(openai.BadRequestError) as e:
        live["client"].chat.completions.create(model="kgfactory", messages=[
            {"role": "system", "content": "x" * 4001}, _user(FIRST)])
    assert e.value.param == "messages" and "4000" in e.value.message


def test_condensed_reply_cleaned():
    from kgfactory.llm.condense import clean

    assert clean('Standalone question: "Where is Helios Robotics headquartered?"\nextra', "q?", 200) == STANDALONE
    assert clean("  \n", "Where is it?", 200) == "Where is it?"
    assert clean("a" * 500, "q?", 100) == "a" * 100
