"""spaCy analysis in worker processes for long ingests (KGF_EXTRACT_PROCESSES).

Why: in the threaded pipeline spaCy shares the interpreter lock with the embedder's feeding, the assembly and
the store writes; in its own process it does not. `analyse` is per chunk and stateless (see SpacyExtractor), so
a worker's answer is the in-process one. A worker costs seconds to start (spaCy and its model load), so a run
starts the pool only after it has analysed PROCESS_AFTER_CHUNKS chunks in-thread, keeps analysing in-thread
until the workers are up, and shuts them down when the run ends (`release`). If a worker dies, its batch and the
rest of the run are analysed in-thread (the same answers), with a warning.

Measured on 2 cores (BENCHMARKS.md): no gain, the cores are already saturated by the embedder and the writes, so
auto starts workers only from 4 cores up, where spaCy alone would bound the run.
"""
from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Sequence

log = logging.getLogger(__name__)

PROCESS_AFTER_CHUNKS = 256  # a run smaller than this never pays a worker's start-up
_worker_extractor: Any = None  # the SpacyExtractor inside a worker process


def _init(ontology: Any, config: dict[str, Any]) -> None:
    global _worker_extractor
    from .spacy_extractor import SpacyExtractor

    _worker_extractor = SpacyExtractor(ontology, **config)
    _worker_extractor.warm_up()


def _ready() -> bool:
    return _worker_extractor is not None


def _analyse(texts: list[str], tenant: str) -> list[list[Any]]:
    return [a.to_json() for a in _worker_extractor.analyse_texts(texts, tenant)]


class AnalysisPool:
    """Up to `processes` spawned workers, each holding the same spaCy pipeline as the extractor that owns them."""

    def __init__(self, ontology: Any, config: dict[str, Any], processes: int):
        self.ontology, self.config, self.processes = ontology, config, processes
        self.seen = 0  # chunks analysed in this run, in-thread or not
        self.remote = 0  # of which in the workers
        self._pool: ProcessPoolExecutor | None = None
        self._ready: list[Future] = []
        self._failed = False  # the workers could not start: this run stays in-thread

    def offer(self, texts: Sequence[str], tenant: str) -> list[list[Any]] | None:
        """The analyses (as JSON lists) when the workers are up, else None (the caller analyses in-thread)."""
        self.seen += len(texts)
        if self._pool is None:
            if self.seen >= PROCESS_AFTER_CHUNKS and not self._failed:
                self._start()
            return None
        if not any(f.done() for f in self._ready):
            return None  # still loading spaCy: this batch goes in-thread
        failed = [f.exception() for f in self._ready if f.done() and f.exception() is not None]
        if failed:
            log.warning("spaCy worker processes did not start (%s); analysing in-thread for this run", failed[0])
            self._stop_for_run()
            return None
        n = max(1, min(self.processes, len(texts) // 16))  # one slice per worker, none tiny
        step = -(-len(texts) // n)
        try:
            parts = [self._pool.submit(_analyse, list(texts[i:i + step]), tenant) for i in range(0, len(texts), step)]
            out = [a for f in parts for a in f.result()]
        except BrokenProcessPool as e:
            log.warning("a spaCy worker process died (%s); this batch and the rest of the run are analysed in-thread", e)
            self._stop_for_run()
            return None
        self.remote += len(texts)
        return out

    def _start(self) -> None:
        log.info("starting %d spaCy worker process(es) for this run", self.processes)
        self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init, initargs=(self.ontology, self.config))
        self._ready = [self._pool.submit(_ready) for _ in range(self.processes)]

    def _drop_pool(self, wait: bool) -> None:
        pool, self._pool, self._ready = self._pool, None, []
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def _stop_for_run(self) -> None:
        """The workers failed: the rest of this run analyses in-thread (no waiting on a broken pool)."""
        self._failed = True
        self._drop_pool(wait=False)

    def workers(self) -> list[int]:
        """The worker processes' pids (tests, diagnostics)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return list(procs)

    def release(self) -> None:
        """Stop the workers (the run ended); the next run starts counting again."""
        self._drop_pool(wait=True)
        self.seen = self.remote = 0
        self._failed = False
