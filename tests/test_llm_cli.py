"""`kgf ask --llm`, `kgf llm check` and `kgf llm usage` end to end through the CLI, against the scripted
OpenAI-compatible server on loopback (the real `openai` client over real HTTP)."""
from __future__ import annotations

import json

import pytest
from openai_scripted_server import Reply, ScriptedOpenAIServer
from typer.testing import CliRunner

from kgfactory.cli.main import app

runner = CliRunner()


@pytest.fixture
def server():
    s = ScriptedOpenAIServer(model="factory-llm").start()
    yield s
    s.stop()


def test_llm_check_reports_the_endpoint(server):
    res = runner.invoke(app, ["llm", "check", "--base-url", server.url])
    assert res.exit_code == 0, res.output
    assert "factory-llm" in res.output and "completion" in res.output and "stream" in res.output and "ok" in res.output
    kinds = [bool(r.get("stream")) for r in server.chat_requests()]
    assert kinds == [False, True]


def test_llm_check_fails_on_an_empty_completion_and_an_empty_stream(server):
    """What `kgf llm check` reported as ok against Gemma 3 270M served by llama.cpp: nothing written."""
    server.default = lambda req: Reply(text="", usage=(12, 0))
    res = runner.invoke(app, ["llm", "check", "--base-url", server.url])
    out = " ".join(res.output.split())
    assert res.exit_code == 1 and "empty (finish_reason stop" in out and "empty: 0 chunks" in out
    assert "failed: the endpoint does not give usable chat completions" in out and "ok:" not in out
    server.replies = [Reply(text="ready")]  # the completion answers, the stream is empty: still a failure
    res = runner.invoke(app, ["llm", "check", "--base-url", server.url])
    out = " ".join(res.output.split())
    assert res.exit_code == 1 and "'ready'" in out and "empty: 0 chunks" in out


def test_llm_check_fails_clearly_when_the_endpoint_is_down(monkeypatch):
    dead = ScriptedOpenAIServer().start()
    url = dead.url
    dead.stop()
    monkeypatch.setenv("KGF_LLM_MAX_RETRIES", "0")
    res = runner.invoke(app, ["llm", "check", "--base-url", url, "--model", "m"])
    assert res.exit_code == 1 and "connection failed" in res.output


def test_ask_llm_streams_a_grounded_answer_and_counts_tokens(server, tmp_path, monkeypatch):
    d = str(tmp_path / "data")
    assert runner.invoke(app, ["ingest", "--sample", "-d", d]).exit_code == 0
    monkeypatch.setenv("KGF_LLM_BASE_URL", server.url)
    server.replies = [Reply(text="Helios Robotics was founded by Marie Dubois [1]. It builds warehouse robots [9].",
                            usage=(400, 30))]
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())  # rich wraps lines at the terminal width
    assert "Helios Robotics was founded by Marie Dubois [1]. It builds warehouse robots [9]." in out  # as written
    assert "A (citations checked): Helios Robotics was founded by Marie Dubois [1]. It builds warehouse robots." in out
    assert "Rejected" not in out
    assert "removed citation(s) [9]" in out and "model factory-llm" in out and "answer_v2@" in out
    assert " [1] Helios Robotics (chars" in out and "Extractive answer" not in out
    req = server.chat_requests()[0]
    assert req["stream"] is True and "Who founded Helios Robotics?" in req["messages"][-1]["content"]

    res = runner.invoke(app, ["llm", "usage", "-d", d, "--json"])
    assert json.loads(res.stdout)["default"]["total_tokens"] == 430

    server.replies = [Reply(text="Marie Dubois [2].")]
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm", "--json"])
    answer = json.loads(res.stdout)  # the /v1/query body (AskResult): the answer text is "answer"
    assert answer["kind"] == "generated" and answer["answer"] == "Marie Dubois [1]." and len(answer["citations"]) == 1
    assert answer["model"] == "factory-llm" and answer["prompt_version"].startswith("answer_v2@")


def test_ask_llm_stream_rejected_by_the_gate_is_visibly_replaced(server, tmp_path, monkeypatch):
    """The invention `kgf ask --llm` printed with Gemma 3 270M: streamed as it came, then withdrawn and replaced by
    the extractive answer, with the reason; --json carries the gate's report and the rejected text."""
    d = str(tmp_path / "data")
    assert runner.invoke(app, ["ingest", "--sample", "-d", d]).exit_code == 0
    monkeypatch.setenv("KGF_LLM_BASE_URL", server.url)
    invented = "Helios Robotics released the Atlas Picker 3 in 2028 [1]. It was sold to Amazon [6][17]."
    server.replies = [Reply(text=invented, usage=(300, 25))]
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert invented in out  # the tokens were shown as they came ...
    assert "Rejected: the generated text above is not supported by its sources" in out  # ... then withdrawn
    assert "A (extractive):" in out and "Marie Dubois" in out and "groundedness gate" in out
    assert "tokens 300 prompt + 25 completion" in out  # the rejected answer's tokens are still reported

    server.replies = [Reply(text=invented)]
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm", "--json"])
    answer = json.loads(res.stdout)  # the /v1/query body (AskResult): the answer text is "answer"
    assert answer["kind"] == "extractive" and invented not in answer["answer"] and answer["citations"]
    g = answer["grounding"]
    assert g["passed"] is False and g["rejected_text"] == invented and g["reasons"]
    assert any("2028" in s["numbers_missing"] for s in g["sentences"]) and g["thresholds"]["min_supported"] == 1.0


def test_ask_llm_falls_back_marked_and_budget_refuses(server, tmp_path, monkeypatch):
    d = str(tmp_path / "data")
    assert runner.invoke(app, ["ingest", "--sample", "-d", d]).exit_code == 0
    monkeypatch.setenv("KGF_LLM_BASE_URL", server.url)
    monkeypatch.setenv("KGF_LLM_MAX_RETRIES", "0")
    server.replies = [Reply(status=500)]
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "A (extractive):" in out and "LLM unavailable" in out and "Marie Dubois" in out

    monkeypatch.setenv("KGF_LLM_TENANT_TOKEN_BUDGET", "10")
    server.replies = [Reply(text="Marie Dubois [1].", usage=(8, 4))]
    assert runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm"]).exit_code == 0
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--llm"])
    assert res.exit_code == 2 and "token budget spent" in " ".join(res.output.split()) and len(server.chat_requests()) == 2


def test_ask_llm_without_an_endpoint_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("KGF_LLM_BASE_URL", raising=False)
    (tmp_path / "a.txt").write_text("Marie Dubois founded Helios Robotics.")
    assert runner.invoke(app, ["ingest", str(tmp_path / "a.txt"), "-d", str(tmp_path / "data")]).exit_code == 0
    res = runner.invoke(app, ["ask", "anything", "-d", str(tmp_path / "data"), "--llm"])
    assert res.exit_code == 2 and "KGF_LLM_BASE_URL" in res.output
