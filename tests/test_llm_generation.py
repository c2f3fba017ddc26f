"""Grounded generation through the real `openai` client over real HTTP to a scripted OpenAI-compatible server:
citations checked, streaming, retries with backoff, timeouts, circuit breaker fallback, token budgets."""
from __future__ import annotations

import time

import pytest
from openai_scripted_server import Reply, ScriptedOpenAIServer

from kgfactory.bootstrap import build_llm
from kgfactory.errors import LLMBudgetError, LLMError, LLMUnavailableError
from kgfactory.llm.answerer import GeneratingAnswerer
from kgfactory.llm.citations import check_citations
from kgfactory.llm.ledger import TokenLedger
from kgfactory.retrieval.answer import ExtractiveAnswerer
from kgfactory.retrieval.models import RetrievalResult, RetrievedChunk
from kgfactory.settings import Settings
from kgfactory.types import Answer

TEXTS = [
    ("Helios Robotics", "Helios Robotics is a company that builds warehouse robots. It was founded by Marie Dubois in 2014."),
    ("Lyon", "Helios Robotics is headquartered in Lyon, a city in France with a large university."),
    ("Atlas Picker", "The Atlas Picker uses NVIDIA GPUs for on-board vision and sorts parcels in warehouses."),
]


@pytest.fixture
def server():
    s = ScriptedOpenAIServer().start()
    yield s
    s.stop()


@pytest.fixture
def result():
    chunks, pos = [], 0
    for i, (title, text) in enumerate(TEXTS):
        chunks.append(RetrievedChunk(id=f"chk_{i}", doc_id=f"doc_{i}", title=title, source=f"/corpus/{i}.txt",
                                     text=text, start=0, end=len(text), score=1.0 - i / 10))
    return RetrievalResult(query="Who founded Helios Robotics?", mode="hybrid", top_k=3, chunks=chunks)


def make(server_url: str, tmp_path, **kw):
    """The LLM as bootstrap builds it, and a generating answerer with the extractive fallback."""
    settings = Settings(data_dir=tmp_path / "data", llm_base_url=server_url, llm_model=kw.pop("model", "m1"),
                        llm_backoff_s=kw.pop("backoff", 0.01), **kw)
    return build_llm(settings)


@pytest.fixture
def answerer_for(tmp_path, embedder):
    def build(url: str, **kw) -> GeneratingAnswerer:
        return GeneratingAnswerer(make(url, tmp_path, **kw), ExtractiveAnswerer(embedder))
    return build


def test_check_citations_keeps_renumbers_and_removes():
    text, order, removed = check_citations("B is true [3]. A too [1, 9]. Nothing [12].", 3)
    assert text == "B is true [1]. A too [2]. Nothing."
    assert order == [2, 0] and removed == [9, 12]


def test_citations_kept_and_invented_ones_removed(server, result, answerer_for):
    server.replies = [Reply(text="Marie Dubois founded Helios Robotics [1]. It is based in Lyon [2][7].", usage=(120, 18))]
    a = answerer_for(server.url).answer(result)
    assert a.kind == "generated"
    assert a.text == "Marie Dubois founded Helios Robotics [1]. It is based in Lyon [2]."
    assert [c.chunk_id for c in a.citations] == ["chk_0", "chk_1"]
    assert a.removed_citations == [7] and "[7]" in a.note
    assert a.model == "m1" and a.prompt_version.startswith("answer_v2@")
    assert a.usage == {"prompt_tokens": 120, "completion_tokens": 18, "total_tokens": 138}
    req = server.chat_requests()[0]
    prompt = req["messages"][-1]["content"]
    assert "[1] Helios Robotics" in prompt and "[3] Atlas Picker" in prompt and "Who founded Helios Robotics?" in prompt
    assert req["model"] == "m1" and not req.get("stream")


def test_citations_renumbered_in_order_of_use(server, result, answerer_for):
    server.replies = [Reply(text="GPUs power the Atlas Picker [3]. Helios builds robots [1].")]
    a = answerer_for(server.url).answer(result)
    assert a.text == "GPUs power the Atlas Picker [1]. Helios builds robots [2]."
    assert [c.chunk_id for c in a.citations] == ["chk_2", "chk_0"] and a.removed_citations == [] and a.note is None


def test_stream_yields_tokens_then_the_checked_answer(server, result, answerer_for):
    raw = "Marie Dubois founded it in 2014 [1]. See also [5]."
    server.replies = [Reply(text=raw, usage=(90, 14))]
    items = list(answerer_for(server.url).stream(result))
    tokens, final = items[:-1], items[-1]
    assert len(tokens) > 3 and all(isinstance(t, str) for t in tokens) and "".join(tokens) == raw
    assert isinstance(final, Answer) and final.kind == "generated"
    assert final.text == "Marie Dubois founded it in 2014 [1]. See also." and final.removed_citations == [5]
    assert final.usage["total_tokens"] == 104
    req = server.chat_requests()[0]
    assert req["stream"] is True and req["stream_options"] == {"include_usage": True}


def test_stream_without_usage_from_the_server_estimates_tokens(server, result, tmp_path):
    llm = make(server.url, tmp_path)
    server.replies = [Reply(text="one two three four", usage=None)]
    *tokens, c = list(llm.stream([{"role": "user", "content": "x" * 400}]))
    assert "".join(tokens) == "one two three four"
    assert c.usage_estimated and c.prompt_tokens == 100 and c.completion_tokens == 5


def test_retries_429_and_5xx_with_backoff(server, result, answerer_for):
    server.replies = [Reply(status=429, headers={"Retry-After": "0.3"}), Reply(status=503),
                      Reply(text="Marie Dubois [1].")]
    t = time.perf_counter()
    a = answerer_for(server.url, llm_max_retries=2, backoff=0.2).answer(result)
    waited = time.perf_counter() - t
    assert a.kind == "generated" and a.text == "Marie Dubois [1]."
    assert len(server.chat_requests()) == 3
    assert waited >= 0.3 + 0.2  # Retry-After honoured, then the exponential backoff's first step


def test_client_error_is_not_retried(server, tmp_path):
    llm = make(server.url, tmp_path, llm_max_retries=3)
    server.replies = [Reply(status=400)]
    with pytest.raises(LLMError, match="HTTP 400") as ei:
        llm.complete([{"role": "user", "content": "hi"}])
    assert not isinstance(ei.value, LLMUnavailableError) and len(server.chat_requests()) == 1
    assert llm.breaker.state == "closed"


def test_timeout_is_retried_then_succeeds(server, result, answerer_for):
    server.replies = [Reply(text="late [1].", delay_s=1.5), Reply(text="Marie Dubois [1].")]
    a = answerer_for(server.url, llm_timeout_s=0.4, llm_max_retries=1).answer(result)
    assert a.kind == "generated" and a.text == "Marie Dubois [1]." and len(server.chat_requests()) == 2


def test_timeout_without_retries_falls_back_to_extractive(server, result, answerer_for):
    server.replies = [Reply(text="late [1].", delay_s=1.5)]
    a = answerer_for(server.url, llm_timeout_s=0.3, llm_max_retries=0).answer(result)
    assert a.kind == "extractive" and a.citations and a.model is None
    assert "LLM unavailable" in a.note and "timed out" in a.note


def test_circuit_breaker_opens_falls_back_and_recovers(server, result, answerer_for):
    server.default = lambda req: Reply(status=503)
    ans = answerer_for(server.url, llm_max_retries=0, llm_breaker_failures=2, llm_breaker_reset_s=30)
    now = [1000.0]
    ans.llm.breaker.clock = lambda: now[0]  # the breaker's time, moved by hand below (no sleeping, no flakes)
    first, second = ans.answer(result), ans.answer(result)
    assert first.kind == second.kind == "extractive" and "HTTP 503" in first.note
    assert len(server.chat_requests()) == 2
    third = ans.answer(result)  # the breaker is open: no request goes out
    assert third.kind == "extractive" and "circuit breaker open" in third.note
    assert len(server.chat_requests()) == 2 and ans.llm.breaker.state == "open"
    streamed = list(ans.stream(result))
    assert streamed[-1].kind == "extractive" and "circuit breaker" in streamed[-1].note
    now[0] += 31
    server.default = lambda req: Reply(text="Marie Dubois [1].")
    recovered = ans.answer(result)  # the trial request succeeds and closes the breaker
    assert recovered.kind == "generated" and ans.llm.breaker.state == "closed"


def test_endpoint_down_falls_back_to_extractive(result, answerer_for):
    dead = ScriptedOpenAIServer().start()
    url = dead.url
    dead.stop()  # nothing listens on this port now: connection refused
    a = answerer_for(url, llm_max_retries=1).answer(result)
    assert a.kind == "extractive" and "connection failed" in a.note and "2 attempt" in a.note


def test_stream_that_breaks_off_ends_with_a_marked_extractive_answer(server, result, answerer_for):
    server.replies = [Reply(text="Marie Dubois founded Helios Robotics in 2014 [1].", cut_after=3)]
    items = list(answerer_for(server.url, llm_max_retries=0).stream(result))
    assert all(isinstance(t, str) for t in items[:-1]) and len(items) >= 2
    assert items[-1].kind == "extractive" and "broke off" in items[-1].note


def test_budget_refuses_when_spent_and_is_per_tenant_and_persisted(server, result, answerer_for, tmp_path):
    server.default = lambda req: Reply(text="Marie Dubois [1].", usage=(20, 5))
    ans = answerer_for(server.url, llm_tenant_token_budget=40)
    assert ans.answer(result, tenant="acme").usage["total_tokens"] == 25
    ans.answer(result, tenant="acme")  # 25 < 40: allowed, now 50
    with pytest.raises(LLMBudgetError, match="acme.*50 of 40") as ei:
        ans.answer(result, tenant="acme")
    assert isinstance(ei.value, LLMError)
    with pytest.raises(LLMBudgetError):
        list(ans.stream(result, tenant="acme"))
    assert len(server.chat_requests()) == 2
    assert ans.answer(result, tenant="globex").kind == "generated"  # another tenant has its own budget
    ledger = TokenLedger(tmp_path / "data" / "llm" / "usage.json")  # what another process would read
    assert ledger.usage("acme") == {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50, "requests": 2}
    assert ledger.used("globex") == 25


def test_default_tenant_comes_from_settings(server, result, tmp_path, embedder):
    llm = make(server.url, tmp_path)
    ans = GeneratingAnswerer(llm, ExtractiveAnswerer(embedder), default_tenant="team-a")
    server.replies = [Reply(text="x [1].", usage=(3, 1))]
    ans.answer(result)
    assert llm.ledger.used("team-a") == 4


def test_model_defaults_to_the_first_the_endpoint_lists(server, tmp_path):
    llm = make(server.url, tmp_path, model="")
    c = llm.complete([{"role": "user", "content": "hi"}])
    assert c.model == "scripted-model" and server.chat_requests()[0]["model"] == "scripted-model"
    assert any(r.get("path", "").endswith("/models") for r in server.requests)


def test_api_key_is_sent_as_bearer(server, tmp_path):
    llm = make(server.url, tmp_path, llm_api_key="sk-test-123")
    llm.complete([{"role": "user", "content": "hi"}])
    assert server.chat_requests()[0]["_auth"] == "Bearer sk-test-123"


def test_empty_knowledge_base_costs_no_tokens(server, answerer_for):
    empty = RetrievalResult(query="q", mode="hybrid", top_k=5, empty_store=True)
    a = answerer_for(server.url).answer(empty)
    assert a.kind == "none" and "No knowledge yet" in a.text and server.chat_requests() == []
    items = list(answerer_for(server.url).stream(empty))
    assert items[-1].kind == "none"


def test_extractive_answerer_streams_too(result, embedder):
    items = list(ExtractiveAnswerer(embedder).stream(result, tenant="x"))
    assert len(items) == 2 and isinstance(items[0], str) and items[1].kind == "extractive"
    assert items[0] == items[1].text and items[1].model is None and items[1].prompt_version is None
