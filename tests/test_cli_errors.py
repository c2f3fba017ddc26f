"""How `kgf` fails, as a new user meets it: one `error: ...` line and no traceback for every expected error, exit
code 1 when something failed (a file not ingested, nothing there, the server down) and 2 when the command was
refused (bad option or setting); read-only commands never create a knowledge base; flags read as flags in --help;
the ingest progress bar has a total and an ETA, locally and through a server."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api_support import free_port, wait_ready
from kgfactory.cli.main import app

runner = CliRunner()
BAD_PDF = b"not a pdf"
TEXT = "Marie Dubois founded Helios Robotics in Lyon. Helios Robotics builds warehouse robots."


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "KGF_DATA_DIR": str(data_dir), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
            "KGF_API_KEY": "", "COLUMNS": "200"}


def kgf(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The console script's entry in a subprocess (Milvus Lite holds a data dir until its process exits)."""
    return subprocess.run([sys.executable, "-m", "kgfactory.cli.entry", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _clean_failure(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout[-1500:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors, r.stderr
    for n in needles:
        assert any(n in line for line in errors), (n, r.stderr)


def _commands(group, path=()):
    """Every command path of the app (sub-apps included)."""
    import click

    cmds = getattr(group, "commands", {})
    for name, cmd in cmds.items():
        if isinstance(cmd, click.Group) or getattr(cmd, "commands", None):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name)


def test_every_help_shows_flags_as_flags():
    """typer 0.29 printed `<bool>` after each flag (--json, --sample, --help ...), as if it took a value."""
    paths = [(), *_commands(typer.main.get_command(app))]
    assert ("ingest",) in paths and ("ontology", "show") in paths and ("keys", "create") in paths
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (path, res.output)
        assert "<bool>" not in res.output and "BOOLEAN" not in res.output, (path, res.output)
    res = runner.invoke(app, ["ingest", "--help"], env={"COLUMNS": "200"})
    assert "--sample" in res.output and "--json" in res.output and "<path>" in res.output  # value types stay
    assert "Exit code 1" in res.output
    assert "Exit codes: 0 done; 1 failed" in runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output


READ_ONLY = [["ask", "Who founded Helios Robotics?"], ["documents"], ["stats"], ["runs"], ["delete", "doc_x"],
             ["sparql", "SELECT * WHERE { ?s ?p ?o }"], ["ontology", "show"], ["ontology", "violations"],
             ["ontology", "validate"], ["export"], ["ontology", "export"]]


@pytest.mark.parametrize("cmd", READ_ONLY, ids=lambda c: " ".join(c[:2]))
def test_read_only_commands_refuse_a_missing_knowledge_base(tmp_path, cmd):
    missing = tmp_path / "no-such-dir"
    res = runner.invoke(app, [*cmd, "-d", str(missing)])
    assert res.exit_code == 1, res.output
    assert "no knowledge base" in res.output and "does not exist" in res.output, res.output
    assert f"kgf ingest PATH -d {missing}" in " ".join(res.output.split()), res.output
    assert not missing.exists()  # nothing created
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, [*cmd, "-d", str(empty)])
    assert res.exit_code == 1 and "holds none" in res.output, res.output
    assert list(empty.iterdir()) == []


def test_bad_setting_is_one_line_exit_2(tmp_path):
    env = {**_env(tmp_path / "d"), "KGF_GRAPH_BACKEND": "nosuch"}
    _clean_failure(kgf(env, "documents"), 2, "bad setting KGF_GRAPH_BACKEND")
    _clean_failure(kgf(env, "ingest", str(tmp_path)), 2, "KGF_GRAPH_BACKEND")


def test_documents_to_do_counts_records():
    from kgfactory.cli.main import documents_to_do, sample_dir
    from kgfactory.service.walk import expand

    files, _ = expand([sample_dir()])
    assert documents_to_do(files) == 6  # the sample: six documents


def test_documents_to_do_counts_corpus_records(tmp_path):
    from kgfactory.cli.main import documents_to_do

    (tmp_path / "a.jsonl").write_text('{"title": "a", "text": "x"}\n\n{"title": "b", "text": "y"}\nnot json\n')
    (tmp_path / "b.json").write_text(json.dumps([{"title": "c", "text": "z"}, {"title": "d", "text": "w"}]))
    (tmp_path / "c.txt").write_text(TEXT)
    assert documents_to_do(sorted(tmp_path.iterdir())) == 3 + 2 + 1  # a bad line counts: it ticks too


def test_local_ingest_errors(tmp_path):
    d = tmp_path / "d"
    env = _env(d)
    r = kgf(env, "ingest", str(tmp_path / "missing.txt"))
    _clean_failure(r, 1, "missing.txt: no such file or directory")
    assert not d.exists()  # refused before anything was opened
    (tmp_path / "a.xyz").write_text("x")
    _clean_failure(kgf(env, "ingest", str(tmp_path / "a.xyz"), str(tmp_path / "missing.txt")), 1,
                   "unsupported file type .xyz", "missing.txt", "nothing ingested")
    (tmp_path / "good.txt").write_text(TEXT)
    (tmp_path / "bad.pdf").write_bytes(BAD_PDF)
    r = kgf(env, "ingest", str(tmp_path / "good.txt"), str(tmp_path / "bad.pdf"), "--json")
    assert r.returncode == 1, r.stderr[-3000:]  # one file failed; the good one is in
    out = json.loads(r.stdout)
    assert out["documents_added"] == 1 and [Path(e["file"]).name for e in out["errors"]] == ["bad.pdf"]
    r = kgf(env, "ingest", str(tmp_path / "good.txt"))
    assert r.returncode == 0, r.stderr[-3000:]


def test_unreachable_server_is_one_line_exit_1(tmp_path):
    from kgfactory.api.serverfile import announce, withdraw

    announce(tmp_path, f"http://127.0.0.1:{free_port()}")  # this live process "serves" it; nothing listens
    try:
        env = _env(tmp_path)
        _clean_failure(kgf(env, "documents"), 1, "cannot reach the server")
        (tmp_path / "good.txt").write_text(TEXT)
        _clean_failure(kgf(env, "ingest", str(tmp_path / "good.txt")), 1, "cannot reach the server")
    finally:
        withdraw(tmp_path)


def _through_pty(env: dict[str, str], *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run kgf with stderr on a terminal (so the progress bar shows); (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.entry", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise AssertionError(f"no output for {timeout} s: {out[-2000:]!r}")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=timeout), out.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def _assert_bar_with_total_and_eta(text: str, total: int) -> None:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # the terminal's colour and cursor codes
    assert f"0/{total} documents" in text, text[-3000:]  # the total is known from the start
    assert f"/{total} documents" in text, text[-3000:]
    assert "eta" in text, text[-3000:]


def test_progress_bar_has_a_total_and_eta_locally(tmp_path):
    code, text = _through_pty(_env(tmp_path / "d"), "ingest", "--sample")
    assert code == 0, text[-3000:]
    _assert_bar_with_total_and_eta(text, 6)


def test_errors_and_progress_through_a_server(tmp_path):
    """The same failures through a running `kgf serve` (the CLI goes through sdk.Client)."""
    d = tmp_path / "d"
    env = _env(d)
    (tmp_path / "good.txt").write_text(TEXT)
    (tmp_path / "bad.pdf").write_bytes(BAD_PDF)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.entry", "serve", "--open", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", timeout=180)
        r = kgf(env, "ingest", str(tmp_path / "missing.txt"))
        _clean_failure(r, 1, "missing.txt: no such file or directory")
        assert "server said" not in r.stderr  # refused here, before anything was sent
        r = kgf(env, "ingest", str(tmp_path / "good.txt"), str(tmp_path / "bad.pdf"))
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
        assert "ingesting through the server" in r.stderr and "bad.pdf" in r.stderr
        _clean_failure(kgf(env, "ask", "Who?", "--mode", "magic"), 2, "server said 422")
        _clean_failure(kgf(env, "delete", "doc_nope"), 1, "server said 404")
        _clean_failure(kgf(env, "stats"), 2, "kgf serve")
        code, text = _through_pty(env, "ingest", "--sample")
        assert code == 0 and "ingesting through the server" in text, text[-3000:]
        _assert_bar_with_total_and_eta(text, 6)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def test_data_dir_held_by_another_process_is_one_line(tmp_path):
    """Milvus Lite lets one process open a data dir: a second `kgf` used to print milvus_lite's traceback and
    'check KGF_MILVUS_URI'."""
    d = tmp_path / "d"
    (tmp_path / "good.txt").write_text(TEXT)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, kgfactory\n"
         "kb = kgfactory.KnowledgeBase.open(sys.argv[1], spacy_model='blank')\n"
         "kb.ingest([sys.argv[2]]); print('open', flush=True); sys.stdin.read()", str(d), str(tmp_path / "good.txt")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(d))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        _clean_failure(kgf(_env(d), "ingest", str(tmp_path / "good.txt")), 1, "in use by another process")
    finally:
        holder.kill()
        holder.wait(timeout=60)
