"""The `kgf` CLI through typer's runner, on real stores."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from kgfactory.cli.main import app

runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("ingest", "ask", "delete", "stats", "documents", "runs"):
        assert cmd in res.output


def test_ingest_sample_stats_documents_delete(tmp_path):
    d = str(tmp_path / "data")
    res = runner.invoke(app, ["ingest", "--sample", "-d", d, "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["documents_added"] == 6 and run["errors"] == []
    res = runner.invoke(app, ["stats", "-d", d, "--json"])
    stats = json.loads(res.stdout)
    assert stats["graph"]["Document"] == 6 and stats["vectors"]["chunks"] == stats["graph"]["Chunk"]
    docs = json.loads(runner.invoke(app, ["documents", "-d", d, "--json"]).stdout)
    assert len(docs) == 6
    res = runner.invoke(app, ["delete", docs[0]["id"], "-d", d])
    assert res.exit_code == 0 and "deleted" in res.output
    res = runner.invoke(app, ["delete", "doc_nope", "-d", d])
    assert res.exit_code == 1 and "no document" in res.output
    res = runner.invoke(app, ["runs", "-d", d])
    assert res.exit_code == 0 and "run_" in res.output


def test_ingest_without_paths_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["ingest", "-d", str(tmp_path / "x")])
    assert res.exit_code == 2 and "PATH" in res.output


def test_bad_setting_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("KGF_EMBED_MODEL", str(tmp_path / "no-such-model"))
    (tmp_path / "a.txt").write_text("Marie Dubois founded Helios Robotics.")
    res = runner.invoke(app, ["ingest", str(tmp_path / "a.txt"), "-d", str(tmp_path / "x")])
    assert res.exit_code == 2 and "KGF_EMBED_MODEL" in res.output


def test_ask_answers_with_citations_and_refuses_bad_input(tmp_path):
    d = str(tmp_path / "data")
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d])
    assert res.exit_code == 1 and "no knowledge base" in res.output  # not created by a read-only command
    assert runner.invoke(app, ["ingest", "--sample", "-d", d]).exit_code == 0
    res = runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d])
    assert res.exit_code == 0, res.output
    assert "Extractive answer" in res.output and "[1]" in res.output and "Marie Dubois" in res.output
    out = json.loads(runner.invoke(app, ["ask", "Who founded Helios Robotics?", "-d", d, "--json", "-m", "graph"]).stdout)
    # --json prints the API's /v1/query body (AskResult), locally as through a server
    assert out["kind"] == "extractive" and out["question"] == "Who founded Helios Robotics?"
    assert out["chunks"] and out["seeds"]
    assert out["citations"][0]["doc_id"].startswith("doc_")
    res = runner.invoke(app, ["ask", "Who?", "-d", d, "--mode", "magic"])
    assert res.exit_code == 2 and "unknown mode" in res.output


def test_default_relative_data_dir_works(tmp_path, monkeypatch):
    """The README's command runs with the default ./kgf-data, a relative path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGF_DATA_DIR", raising=False)
    (tmp_path / "a.txt").write_text("Marie Dubois founded Helios Robotics.")
    res = runner.invoke(app, ["ingest", "a.txt", "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "kgf-data" / "milvus.db").exists()
    assert (tmp_path / "kgf-data" / "graph" / "falkordb.log").exists()
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["graph"]["Document"] == 1


def test_ask_in_a_new_process_after_ingest(tmp_path):
    """The README's two steps as two processes: stores opened by a later process must serve reads.
    (Milvus Lite's in-process server holds the data-dir lock until its process exits, so both are subprocesses.)"""
    d = str(tmp_path / "data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def kgf(*args):
        return subprocess.run([sys.executable, "-m", "kgfactory.cli.main", *args, "-d", d], capture_output=True,
                              text=True, env=env, timeout=300)

    ing = kgf("ingest", "--sample", "--json")
    assert ing.returncode == 0, ing.stderr[-2000:]
    out = kgf("ask", "Who founded Helios Robotics?", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    body = json.loads(out.stdout)
    assert body["kind"] == "extractive" and body["citations"]
