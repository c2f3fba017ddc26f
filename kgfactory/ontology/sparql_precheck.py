"""Parse and plan each SPARQL query in a child process first (ontology/sparql_child.py), so a pyoxigraph
crash or a planner that runs away costs the child, not the API.

Why: pyoxigraph's parser overflows its stack on deep nesting (a segfault, nothing to catch), and its planner
is super-polynomial in the triple patterns of one group (measured on an empty store: 100 patterns of one
subject 1.5 s, 200 patterns 25 s, all inside Store.query, before any row). The bounds in sparql_guard.py stop
the known crash; this stops what they do not foresee. A query the child cannot plan within
KGF_SPARQL_CHECK_TIMEOUT_S is refused and the child killed; one it crashes on is refused. Children are kept
warm, at most POOL_SIZE at a time (measured: start-up 45-100 ms once; a small ASK 0.16 ms without the check,
0.5 ms with it, median of 300). Allow-listed SERVICE endpoints are replaced by a stand-in IRI for the check, so
the child never contacts anything.
"""
from __future__ import annotations

import atexit
import json
import logging
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import SparqlError, SparqlRefusedError

log = logging.getLogger(__name__)

POOL_SIZE = 2
CHILD_MEMORY_BYTES = 1 << 30  # address-space cap of a child: a planner blow-up fails there, not here
CHILD = Path(__file__).with_name("sparql_child.py")
START_TIMEOUT_S = 30.0  # a child's start-up (Python and pyoxigraph imports) on a loaded machine
SERVICE_STAND_IN = "<urn:kgf:service-check>"  # allow-listed endpoints are never contacted by the check


class _Child:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(CHILD), str(CHILD_MEMORY_BYTES)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        if self.ask({"q": "ASK {}", "timeout": START_TIMEOUT_S}, START_TIMEOUT_S).get("ok") is not True:
            raise SparqlError(f"the isolated SPARQL parse check did not start ({sys.executable} {CHILD}); "
                              "KGF_SPARQL_CHECK_TIMEOUT_S=0 runs queries without it")

    def ask(self, request: dict, timeout_s: float) -> dict:
        """The child's reply ({"ok": true} or {"syntax": ...}); {"gone": true} when it had ended before it got
        the request; {"timeout": true} or {"crashed": exit code} when it did not answer (it is killed then)."""
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self.kill()
            return {"gone": True}
        try:
            ready = bool(select.select([self.proc.stdout], [], [], timeout_s)[0])
            line = self.proc.stdout.readline() if ready else b""
        except OSError:
            ready, line = True, b""
        if line:
            return json.loads(line)
        self.kill()
        return {"crashed": self.proc.returncode} if ready else {"timeout": True}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class PlanChecker:
    """check(query, ...) raises SparqlRefusedError when the isolated parse crashed or ran out of time."""

    def __init__(self, size: int = POOL_SIZE):
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()

    def check(self, sparql: str, *, prefixes: dict | None, timeout_s: float, wait_s: float,
              services: Sequence[tuple[int, int]] = ()) -> None:
        for start, end in sorted(services, reverse=True):
            sparql = sparql[:start] + SERVICE_STAND_IN + sparql[end:]
        if not self._slots.acquire(timeout=wait_s):
            raise SparqlError(f"every SPARQL parse check is busy; try again (waited {wait_s:g} s)")
        try:
            request = {"q": sparql, "prefixes": prefixes or None, "timeout": timeout_s}
            with self._lock:
                child = self._idle.pop() if self._idle else None
            if child is None or child.proc.poll() is not None:
                child = _Child()
            reply = child.ask(request, timeout_s)
            if reply.get("gone"):  # an idle child that ended on its own: not this query's doing
                child = _Child()
                reply = child.ask(request, timeout_s)
            if reply.get("timeout"):
                raise SparqlRefusedError(
                    f"the query could not be parsed and planned within {timeout_s:g} s (KGF_SPARQL_CHECK_TIMEOUT_S), "
                    "so it was not run; large groups of triple patterns make the planner slow: split the query or "
                    "use subqueries", "query_too_complex")
            if "crashed" in reply or "gone" in reply:
                code = reply.get("crashed")
                log.warning("the SPARQL parse check crashed (exit %s) on a %d-character query", code, len(sparql))
                raise SparqlRefusedError(f"the SPARQL parser crashed on this query in the isolated check (exit "
                                         f"{code}), so it was not run; simplify the query", "query_crashed_parser")
            with self._lock:
                self._idle.append(child)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()


_checker: PlanChecker | None = None
_checker_lock = threading.Lock()


def checker() -> PlanChecker:
    """The process's pool of check children, started on first use and closed at exit."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = PlanChecker()
            atexit.register(_checker.close)
        return _checker
