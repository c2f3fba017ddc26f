"""Helpers shared by the benchmarks: data location, machine description, BENCHMARKS.md sections."""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("KGF_BENCH_RESULTS", REPO / "bench" / "results"))  # tests point it elsewhere
BENCHMARKS_MD = Path(os.environ.get("KGF_BENCHMARKS_MD", REPO / "BENCHMARKS.md"))


def bench_data() -> Path:
    """../shared/bench-data beside the repo (never copied into it); KGF_BENCH_DATA overrides."""
    p = Path(os.environ.get("KGF_BENCH_DATA", REPO.parent / "shared" / "bench-data"))
    if not p.is_dir():
        sys.exit(f"bench data not found at {p}; set KGF_BENCH_DATA")
    return p


def machine() -> str:
    try:
        import psutil

        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except Exception:
        mem = "?"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True).strip()
    except Exception:
        return "unknown"


def header(command: str) -> dict:
    return {"machine": machine(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(), "command": command}


def provenance(r: dict) -> str:
    """The line every BENCHMARKS.md section opens with: where, when, from which commit and command (header())."""
    return f"Machine: {r['machine']}. Date: {r['date']}. Commit: `{r['commit']}`. Command: `{r['command']}`."


def save_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section between <!-- bench:NAME --> markers in BENCHMARKS.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n\nMeasured, never estimated. Each section says machine, date, commit and command.\n"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)


def publish(out: dict, json_name: str, section: str, render, write: bool = True) -> dict:
    """The end of every benchmark: JSON under bench/results, the BENCHMARKS.md section (unless told not to),
    the figures on stdout."""
    save_json(json_name, out)
    if write:
        write_section(section, render(out))
    print(json.dumps(out, indent=2, default=str))
    return out
