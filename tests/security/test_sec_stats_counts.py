"""Issue 14, defect 11 (stats and counts): after a real crash mid-ingest, `kgf stats` shows the half-written
documents and their chunks apart from complete ones, and the re-run's crash repair leaves exact counts (entity
vectors = graph entities = a clean run's)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kgfactory

pytestmark = pytest.mark.timeout(400)
CODE = Path(kgfactory.__file__).resolve().parents[1]  # the kgfactory under test, for child processes

# the child ingests in groups of two and dies (kill -9 semantics: os._exit, no clean-up) as the second group is
# about to be marked complete: group 1 complete, group 2 written but pending, the rest never started
CRASH = """
import os, sys
from kgfactory.bootstrap import build_services
from kgfactory.settings import Settings
svc = build_services(Settings(data_dir=sys.argv[1]))
real, calls = svc.graph.complete_documents, []
def complete(rows):
    calls.append(1)
    if len(calls) == 2:
        os._exit(9)
    real(rows)
svc.graph.complete_documents = complete
svc.pipeline.group_size = 2
svc.pipeline.ingest([sys.argv[2]])
"""


def _stats(data: Path) -> dict:
    from typer.testing import CliRunner

    from kgfactory.cli.main import app

    r = CliRunner().invoke(app, ["stats", "-d", str(data), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_stats_after_a_crash_show_pending_apart_and_repair_leaves_exact_counts(make_services, tmp_path, sample_dir):
    from kgfactory.graph.falkordb_server import kill_stale

    corpus = tmp_path / "corpus"
    shutil.copytree(sample_dir, corpus)
    clean = make_services(tmp_path / "clean")
    clean.pipeline.ingest([str(corpus)])
    want = _stats_of(clean)

    data = tmp_path / "crashed"
    env = {**os.environ, "PYTHONPATH": str(CODE), "HF_HUB_OFFLINE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", CRASH, str(data), str(corpus)], env=env, cwd=CODE,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 9, proc.stderr[-2000:]

        s = _stats(data)
        g, v = s["graph"], s["vectors"]
        assert g["Document"] == 2 and g["Document (pending)"] == 2, s  # was: Document 4, pending ones included
        assert g["Chunk (pending)"] > 0 and v["chunks (pending)"] == g["Chunk (pending)"], s
        assert v["chunks"] == g["Chunk"] > 0, s  # complete chunks only, in both stores

        svc = make_services(data)
        run = svc.pipeline.ingest([str(corpus)])  # crash repair: the pending group is removed and written again
        assert run.errors == [] and run.documents_added == 4 and run.documents_unchanged == 2
        got = _stats_of(svc)
        assert got == want, (got, want)
        assert svc.vectors.count("entities", exact=True) == svc.vectors.count("entities") == got["graph"]["Entity"]
        svc.close()
        s = _stats(data)
        assert not any("(" in k for k in [*s["graph"], *s["vectors"]]), s
        assert s["vectors"] == {"chunks": want["vectors"]["chunks"], "entities": want["vectors"]["entities"]}
    finally:
        kill_stale(data)  # the crashed child's graph server outlives it (own session); the re-runs re-attached


def _stats_of(svc) -> dict:
    from kgfactory.cli.main import _stats as cli_stats

    return cli_stats(svc)
