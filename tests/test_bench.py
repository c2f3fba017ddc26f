"""The benchmark suite runs (tiny sizes, results to a temp dir): it must not rot between full runs. These
tests check that the figures are produced and sane, never how fast anything is."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import BENCH_DATA, REPO

pytestmark = pytest.mark.skipif(not BENCH_DATA.is_dir(), reason=f"bench data not found at {BENCH_DATA}")


def _run(tmp_path, *args):
    env = {**os.environ, "KGF_BENCH_RESULTS": str(tmp_path / "results"), "KGF_BENCHMARKS_MD": str(tmp_path / "B.md"),
           "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_query_bench_on_a_small_synthetic_kb(tmp_path):
    _run(tmp_path, "query", "--sizes", "300", "--questions", "3", "--centroids", "40", "--out", "q")
    r = json.loads((tmp_path / "results" / "q.json").read_text())
    s = r["sizes"]["300"]
    assert s["chunks"] == 300 and s["graph"]["entities"] > 0 and s["graph"]["mentions"] >= 300
    for key in ("hybrid_hnsw", "vector_hnsw", "hybrid_exact"):
        assert s[key]["total"]["p50"] > 0
    assert s["batched_exact"]["queries_per_s"] > 0
    md = (tmp_path / "B.md").read_text()
    assert "Query latency and scaling" in md and "| 300 |" in md
    assert (tmp_path / "results" / "scaling.png").stat().st_size > 1000


def test_replicas_bench_on_a_small_synthetic_kb(tmp_path):
    _run(tmp_path, "replicas", "--sizes", "300", "--centroids", "40", "--rounds", "1", "--out", "r")
    s = json.loads((tmp_path / "results" / "r.json").read_text())["sizes"]["300"]
    assert s["chunks"] == 300 and s["patch_after_write_s"] > 0 and s["patch_after_delete_s"] > 0
    assert s["full_reload_s"] > 0 and s["lag_after_write_s"] > s["patch_after_write_s"]


def test_device_bench_quick(tmp_path):
    _run(tmp_path, "device", "--edges", "20000", "--texts", "8", "--repeat", "2", "--out", "d")
    r = json.loads((tmp_path / "results" / "d.json").read_text())
    assert r["ppr"]["edges"] >= 15000 and r["ppr"]["cpu_batch1"]["p50_ms"] > 0
    assert r["embed"]["cpu"]["chunks_per_s"] > 0
    md = (tmp_path / "B.md").read_text()
    if r["gpu"] is None:
        assert "not measured yet" in md


def test_answer_bench_quick(tmp_path):
    _run(tmp_path, "answer", "--quick", "--questions", "2", "--max-embedded", "0", "2")
    r = json.loads((tmp_path / "results" / "quick_answer.json").read_text())
    assert r["questions"] == 2 and set(r["settings"]) == {"0", "2"}
    assert all(s["p50_ms"] > 0 and 0 <= s["answer_has_gold"] <= 2 for s in r["settings"].values())
    assert 0 <= r["top5_chunks_have_gold"] <= 2


def test_abstain_bench_quick(tmp_path):
    _run(tmp_path, "abstain", "--quick", "--questions", "3", "--thresholds", "0.3", "0.6")
    r = json.loads((tmp_path / "results" / "quick_abstain.json").read_text())
    d = r["datasets"]["musique"]
    assert d["questions"] == 3 and d["out_of_corpus"] == 50 and d["ooc_terms_found_in_corpus"] == []
    assert [c["threshold"] for c in d["signals"]["support"]["curve"]] == sorted({0.3, 0.6, r["threshold"]})
    lo, hi = d["signals"]["support"]["curve"][0], d["signals"]["support"]["curve"][-1]
    assert lo["false_abstain"] <= hi["false_abstain"] and lo["false_answer"] >= hi["false_answer"]


def test_bench_help_lists_the_suite(tmp_path):
    out = _run(tmp_path, "--help").stdout
    for name in ("all", "quality", "ingest", "query", "device", "answer", "abstain", "replicas", "--quick"):
        assert name in out
