"""Overlapping ingest stages: while the main thread parses, admits and writes one group, a text thread chunks
and extracts the next and a vector thread embeds the one between.

Threads, not processes: spaCy's and torch's kernels release the GIL, and the stores are other processes, so
on a few cores the stages overlap without copying documents between processes. The main thread keeps every
store write and admission (reads of what is stored), in group order, so a run writes exactly what the serial
mode writes. At most `depth` groups are between admission and written (memory stays flat on any corpus). A
failing stage stops the run: groups before it are complete, the failing group and those after it were never
written, the threads are stopped and joined, and its error (naming the document) is raised.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..types import IngestRun

if TYPE_CHECKING:
    from .pipeline import Group, IngestPipeline, Prepared, Progress

log = logging.getLogger(__name__)

_END = object()
JOIN_TIMEOUT_S = 120.0


@dataclass
class _Failed:
    error: BaseException


@dataclass
class StageStats:
    """Per-thread busy seconds and the peak number of groups in flight (what the progress bar and tests read)."""
    busy: dict[str, float] = field(default_factory=dict)
    peak_inflight: int = 0

    def limiting(self, timings: dict[str, float]) -> str:
        """The stage that bounds throughput: the busiest thread's largest stage."""
        if not self.busy:
            return ""
        thread = max(self.busy, key=lambda k: self.busy[k])
        stages = THREAD_STAGES.get(thread, ())
        return max(stages, key=lambda s: timings.get(s, 0.0)) if stages else thread


THREAD_STAGES = {"text": ("chunk", "extract"), "vectors": ("embed_chunks", "embed_entities"),
                 "main": ("parse", "write_graph", "write_vectors")}


def _worker(name: str, fn: Callable[[Any], Any], q_in: queue.Queue, q_out: queue.Queue, stop: threading.Event,
            stats: StageStats) -> None:
    while True:
        item = q_in.get()
        if item is _END:
            q_out.put(_END)
            return
        if isinstance(item, _Failed):
            q_out.put(item)  # passed on, in order, for the main thread to see
            continue
        if stop.is_set():
            continue  # the run is stopping: later groups are dropped, never half-prepared into a write
        group, value = item
        t = time.perf_counter()
        try:
            out = fn(value)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
            stop.set()
            q_out.put(_Failed(e))
            continue
        finally:
            stats.busy[name] = stats.busy.get(name, 0.0) + time.perf_counter() - t
        q_out.put((group, out))


def run_threaded(pipe: "IngestPipeline", groups: Iterator["Group"], run: IngestRun, progress: "Progress | None",
                 depth: int = 3) -> StageStats:
    """Prepare groups in two threads (text, vectors) and commit them here, in order, `depth` in flight at most."""
    stats = pipe.stage_stats = StageStats()
    stop = threading.Event()
    q_text: queue.Queue = queue.Queue()  # unbounded queues: the in-flight count below is the bound
    q_vec: queue.Queue = queue.Queue()
    q_done: queue.Queue = queue.Queue()
    threads = [threading.Thread(target=_worker, name="kgf-ingest-text", daemon=True,
                                args=("text", lambda docs: pipe.prepare_text(docs), q_text, q_vec, stop, stats)),
               threading.Thread(target=_worker, name="kgf-ingest-vectors", daemon=True,
                                args=("vectors", pipe.prepare_vectors, q_vec, q_done, stop, stats))]
    for th in threads:
        th.start()
    inflight = 0

    def commit_next() -> None:
        item = q_done.get()
        if isinstance(item, _Failed):
            raise item.error
        group, prepared = item
        t = time.perf_counter()
        pipe.commit(group, prepared, run, progress)
        stats.busy["main"] = stats.busy.get("main", 0.0) + time.perf_counter() - t
        _tell_limit(progress, stats, run.timings)

    try:
        t = time.perf_counter()
        for group in groups:  # parse and admit here, while the threads work on earlier groups
            stats.busy["main"] = stats.busy.get("main", 0.0) + time.perf_counter() - t
            q_text.put((group, group.docs))
            inflight += 1
            stats.peak_inflight = max(stats.peak_inflight, inflight)
            while inflight >= depth:
                commit_next()
                inflight -= 1
            t = time.perf_counter()
        while inflight:
            commit_next()
            inflight -= 1
    finally:
        stop.set()
        q_text.put(_END)
        for th in threads:
            th.join(JOIN_TIMEOUT_S)
            if th.is_alive():  # a stage stuck in a kernel; it is a daemon and holds no store writes
                log.error("ingest thread %s did not stop within %.0f s", th.name, JOIN_TIMEOUT_S)
    return stats


def _tell_limit(progress: "Progress | None", stats: StageStats, timings: dict[str, float]) -> None:
    if progress is not None:
        stage = stats.limiting(timings)
        if stage:
            progress("limit:" + stage, 0)
