"""The groundedness gate with the real MiniLM embedder (no mock of it): hand-written answers, supported and
invented, against the bundled sample's text; then through the API (/v1/query plain and streamed,
/v1/chat/completions plain and streamed) with the scripted OpenAI-protocol server writing the model's words."""
from __future__ import annotations

import json

import pytest
from openai_scripted_server import Reply, ScriptedOpenAIServer

from kgfactory.llm.grounding import GateThresholds, GroundingGate, names, split_sentences
from kgfactory.llm.prompts import load_prompt

HELIOS = ("Helios Robotics is a company that builds warehouse robots. It was founded by Marie Dubois in 2014. "
          "Helios Robotics is headquartered in Lyon, a city in France with a large university.")
ATLAS = "The Atlas Picker uses NVIDIA GPUs for on-board vision and sorts parcels in warehouses."
SOURCES = [HELIOS, ATLAS]

SUPPORTED = [
    "Marie Dubois founded Helios Robotics [1].",
    "Helios Robotics was founded in 2014 by Marie Dubois [1].",
    "The founder of Helios Robotics is Marie Dubois [1].",
    "Helios Robotics builds warehouse robots and is based in Lyon, France [1].",
    "The Atlas Picker sorts parcels using NVIDIA GPUs [2].",
    "Marie Dubois founded Helios Robotics in 2014 [1]. Its Atlas Picker uses NVIDIA GPUs [2].",
    "It was founded by Marie Dubois in 2014. [1]",  # the marker after the full stop
]
UNSUPPORTED = [  # (answer, what must be reported)
    ("Helios Robotics released the Atlas Picker 3 in 2028 [1].", "2028"),  # Gemma 3 270M's invention
    ("Helios Robotics was founded by John Smith [1].", "John"),
    ("Helios Robotics is headquartered in Berlin [1].", "Berlin"),
    ("The company went bankrupt after a scandal [1].", "similarity"),
    ("Helios Robotics makes robots for hospitals [1].", "words"),
    ("The Atlas Picker is powered by AMD chips [2].", "AMD"),
    ("Marie Dubois founded Helios Robotics [1]. She sold it to Amazon in 2019 [1].", "2019"),
]


@pytest.fixture(scope="module")
def gate(embedder):
    return GroundingGate(embedder)


@pytest.mark.parametrize("text", SUPPORTED)
def test_answers_the_sources_support_pass(gate, text):
    g = gate.check(text, SOURCES)
    assert g.passed, g.model_dump()
    assert g.supported_share == 1.0 and all(s.supported for s in g.sentences) and not g.reasons


@pytest.mark.parametrize("text,why", UNSUPPORTED)
def test_invented_answers_are_rejected_with_the_reason(gate, text, why):
    g = gate.check(text, SOURCES)
    assert not g.passed and g.reasons and g.supported_share < 1.0
    assert why in " ".join(s.reason or "" for s in g.sentences if not s.supported)


# what Gemma 3 270M (base, Q4_K_M) wrote through llama.cpp's server for "Who founded Helios Robotics?" and
# "Where was Tomas Berg born?" over the bundled sample (answer_v2 and answer_v1 prompts, temperature 0)
GEMMA_OUTPUTS = [
    "[3] Helios Robotics -[CO_OCCURS]-> chief executive\n[4] Helios Robotics -[CO_OCCURS]-> supply-chain graph\n"
    "[5] Helios Robotics -[CO_OCCURS]-> vision models\n[",
    "[3]\n[4]\n[5]\n[6]\n[7]\n[8]\n[9]\n[10]\n[11]\n[12]\n[13]\n",
    "Sources:\n[1] Helios Robotics\n# Helios Robotics\n\nHelios Robotics is a company that builds warehouse robots. "
    "Helios Robotics is headquartered in Lyon.\n\nGraph facts (not citable):\n- Helios Robotics -[CO_OCCURS]-> "
    "route data\n\nRules: answer in one or two short sentences, using only the sources above.\n\n"
    "Question: Who founded Helios Robotics?\nAnswer: equipado\nSources:\n[1] Helios Robotics",
]


@pytest.mark.parametrize("raw", GEMMA_OUTPUTS)
def test_real_small_model_outputs_are_rejected(gate, raw, sample_dir):
    from kgfactory.llm.citations import check_citations

    texts = [p.read_text() for p in sorted(sample_dir.iterdir()) if p.suffix in (".md", ".txt")]
    texts = (texts * 3)[:5]  # five numbered sources, as in the prompt
    text, order, _ = check_citations(raw, len(texts))
    g = gate.check(text, [texts[i] for i in order])
    assert not g.passed and g.reasons


@pytest.mark.parametrize("raw", [
    # what Gemma 3 270M wrote for MuSiQue questions (bench.llm_loop): copies of the prompt, which the
    # sentence checks alone passed, since every copied sentence is "in" its source
    "Sources: [1] Bubye River\nThe Bubye River, also known as Bubi River, is a tributary of the Limpopo River [1].",
    "Question: What is the name of the county in which Johnnycake, West Virginia is located?\nAnswer: [1] [2] [3]",
    "What is the name of the county in which Johnnycake, West Virginia is located? It is a county [1].",
])
def test_an_echo_of_the_prompt_is_rejected(gate, raw):
    src = ("The Bubye River, also known as Bubi River, is a tributary of the Limpopo River in Zimbabwe. "
           "Johnnycake is an unincorporated community in Braxton County, West Virginia, a county.")
    g = gate.check(raw, [src], question="What is the name of the county in which Johnnycake, West Virginia is located?")
    assert not g.passed and "echoed the prompt" in g.reasons[0]
    assert gate.check("Johnnycake is in Braxton County, West Virginia [1].", [src],
                      question="What is the name of the county in which Johnnycake, West Virginia is located?").passed


def test_no_citation_or_empty_text_is_rejected(gate):
    g = gate.check("Marie Dubois founded Helios Robotics.", [])
    assert not g.passed and "cites no source" in g.reasons[0]
    assert "empty answer" in gate.check("  ", SOURCES).reasons[0]


def test_uncited_sentence_is_checked_against_all_cited_sources(gate):
    g = gate.check("Marie Dubois founded Helios Robotics [1]. It builds warehouse robots.", SOURCES[:1])
    assert g.passed and g.sentences[1].cited == [] and "cites no source" in g.sentences[1].reason
    g = gate.check("Marie Dubois founded Helios Robotics [1]. It also sells ice cream in Tokyo.", SOURCES[:1])
    assert not g.passed and not g.sentences[1].supported


def test_a_sentence_is_checked_against_the_source_it_cites_not_another(gate):
    # true of source 1, but cited to source 2: not supported by what it cites
    g = gate.check("Helios Robotics was founded by Marie Dubois in 2014 [2].", SOURCES)
    assert not g.passed and g.sentences[0].cited == [2]


def test_thresholds_are_settings_and_reported(gate, embedder):
    loose = GroundingGate(embedder, GateThresholds(min_sim=0.0, min_names=0.0, min_words=0.0, min_supported=0.5))
    text = "Marie Dubois founded Helios Robotics [1]. The company went bankrupt after a scandal [1]."
    assert not gate.check(text, SOURCES).passed
    g = loose.check(text, SOURCES)
    assert g.thresholds == {"min_sim": 0.0, "min_names": 0.0, "min_words": 0.0, "min_supported": 0.5}
    assert g.passed  # the second sentence has no number or name to miss; with no similarity floor it passes too


def test_sentence_splitting_and_names():
    assert split_sentences("A founded B in 2014 [1]. [2] See also. Then C sold it [3].") == [
        ("A founded B in 2014.", [1, 2]), ("Then C sold it.", [3])]
    assert names("Marie Dubois founded Helios Robotics in Lyon.") == ["Marie", "Dubois", "Helios", "Robotics", "Lyon"]
    assert names("Founded in 2014, the company sells robots.") == []


def test_prompt_v2_puts_sources_first_and_asks_for_markers_and_v1_still_loads():
    v2, v1 = load_prompt("answer_v2"), load_prompt("answer_v1")
    user = v2.messages(context="[1] T\nbody", question="Q?")[1]["content"]
    assert user.index("[1] T") < user.index("Question: Q?") and "square brackets" in user and "[2]" in user
    assert v1.version.startswith("answer_v1@") and v2.version.startswith("answer_v2@")


# --- through the API --------------------------------------------------------------------------------
INVENTED = "Helios Robotics released the Atlas Picker 3 in 2028 [1]. Revenue grew to 90 million euros [6]."
GROUNDED = "Helios Robotics was founded by Marie Dubois [1]."


@pytest.fixture(scope="module")
def llm_api(tmp_path_factory, embedder, extractor):
    from fastapi.testclient import TestClient

    from api_support import build
    from kgfactory.api import create_app
    from kgfactory.cli.main import sample_dir

    server = ScriptedOpenAIServer(model="tiny").start()
    data = tmp_path_factory.mktemp("ground") / "data"
    svc = build(data, embedder, extractor, llm_base_url=server.url, llm_model="tiny", llm_max_retries=0,
                api_open=True)
    svc.pipeline.ingest([sample_dir()])
    with TestClient(create_app(services=svc)) as client:
        yield client, server
    svc.close()
    server.stop()


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append((lines.get("event", "message"), json.loads(lines["data"]) if lines.get("data", "").startswith("{") else lines.get("data")))
    return out


def _audit(client, action: str) -> dict:
    return client.get(f"/v1/audit?action={action}&limit=1").json()[0]["detail"]


def test_query_returns_the_extractive_answer_when_the_gate_rejects(llm_api):
    client, server = llm_api
    server.replies = [Reply(text=INVENTED)]
    body = client.post("/v1/query", json={"question": "Who founded Helios Robotics?"}).json()
    assert body["kind"] == "extractive" and "2028" not in body["answer"] and "Marie Dubois" in body["answer"]
    assert "groundedness gate" in body["note"] and body["citations"] and body["model"] == "tiny"
    g = body["grounding"]
    assert g["passed"] is False and g["rejected_text"] == INVENTED and g["thresholds"]["min_sim"] == 0.55
    detail = _audit(client, "query")
    assert detail["grounded"] is False and detail["grounding_reasons"]

    server.replies = [Reply(text=GROUNDED)]
    body = client.post("/v1/query", json={"question": "Who founded Helios Robotics?"}).json()
    assert body["kind"] == "generated" and body["answer"] == GROUNDED and body["grounding"]["passed"] is True
    assert body["grounding"]["rejected_text"] is None and _audit(client, "query")["grounded"] is True


def test_query_stream_says_the_streamed_text_is_withdrawn(llm_api):
    client, server = llm_api
    server.replies = [Reply(text=INVENTED)]
    r = client.post("/v1/query", json={"question": "Who founded Helios Robotics?", "stream": True})
    events = _events(r.text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "retrieval" and "token" in kinds and kinds[-3:] == ["rejected", "answer", "done"]
    assert "".join(d["text"] for e, d in events if e == "token") == INVENTED
    rejected, answer = events[-3][1], events[-2][1]
    assert "withdrawn" in rejected["message"] and rejected["reasons"]
    assert answer["kind"] == "extractive" and answer["grounding"]["passed"] is False
    assert _audit(client, "query")["grounded"] is False

    server.replies = [Reply(text=GROUNDED)]
    kinds = [e for e, _ in _events(client.post("/v1/query", json={"question": "Who founded Helios Robotics?",
                                                                   "stream": True}).text)]
    assert "rejected" not in kinds and kinds[-2:] == ["answer", "done"]


def test_chat_completions_carry_the_gate_and_withdraw_a_rejected_stream(llm_api):
    client, server = llm_api
    msgs = [{"role": "user", "content": "Who founded Helios Robotics?"}]
    server.replies = [Reply(text=INVENTED)]
    body = client.post("/v1/chat/completions", json={"model": "kgfactory", "messages": msgs}).json()
    content = body["choices"][0]["message"]["content"]
    assert "2028" not in content and "Marie Dubois" in content and body["answer_kind"] == "extractive"
    assert body["grounding"]["passed"] is False and _audit(client, "chat")["grounded"] is False

    server.replies = [Reply(text=INVENTED)]
    r = client.post("/v1/chat/completions", json={"model": "kgfactory", "messages": msgs, "stream": True})
    frames = [json.loads(f[6:]) for f in r.text.strip().split("\n\n") if f.startswith("data: {")]
    text = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames)
    assert text.index(INVENTED) < text.index("withdrawn") < text.rindex("Marie Dubois")
    last = frames[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["grounding"]["passed"] is False
    assert last["answer_kind"] == "extractive" and r.text.rstrip().endswith("data: [DONE]")
    assert _audit(client, "chat")["grounded"] is False
