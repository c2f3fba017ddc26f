"""`kgf ask --json` prints one shape: the same AskResult in-process and through a running `kgf serve` on the same
data directory (per-run fields aside: timings)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from api_support import free_port, wait_ready

Q = "Who founded Helios Robotics?"


def _per_run_fields_removed(body: dict) -> dict:
    body = dict(body)
    body.pop("timings")
    return body


def test_ask_json_is_identical_locally_and_through_a_server(tmp_path):
    env = {**os.environ, "KGF_DATA_DIR": str(tmp_path / "d"), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
           "KGF_API_KEY": ""}

    def kgf(*args: str) -> subprocess.CompletedProcess:
        # subprocesses: Milvus Lite holds the data dir until its process exits, and `kgf serve` must open it next
        return subprocess.run([sys.executable, "-m", "kgfactory.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    ing = kgf("ingest", "--sample", "--json")
    assert ing.returncode == 0, ing.stderr[-2000:]
    local = kgf("ask", Q, "--json", "-k", "3")
    assert local.returncode == 0, local.stderr[-2000:]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}", timeout=180)
        served = kgf("ask", Q, "--json", "-k", "3")
        assert served.returncode == 0, served.stderr[-2000:]
        assert "answered by the server" in served.stderr
        docs = kgf("documents", "--json")
        assert docs.returncode == 0 and len(json.loads(docs.stdout)) == 6, docs.stderr[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    a, b = json.loads(local.stdout), json.loads(served.stdout)
    assert a["citations"] and a["kind"] == "extractive"
    assert a["timings"] and b["timings"]
    assert _per_run_fields_removed(a) == _per_run_fields_removed(b)
