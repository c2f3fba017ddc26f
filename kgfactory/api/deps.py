"""What a route depends on: the application layer scoped to the caller's tenant (`ReaderKB`, `AnalystKB`,
`IngesterKB`), an audit context manager, and the metrics listener the layer reports to.

A route is: dependency -> call the layer -> audit -> response model. The key's role decides which dependency
lets the call through (auth.require); its tenant decides what the layer sees.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Any, Callable, Iterator

from fastapi import Depends, Request

from ..errors import CypherRefusedError, NotFoundError, SparqlRefusedError
from ..service.knowledge import KnowledgeService
from ..types import Answer
from .auth import require
from .errors import _status
from .keys import Principal
from .metrics import Metrics
from .state import AppState, audit, get_state


class MetricsObserver:
    """The layer's Observer for the API: stage timings, token usage, queries and searches counted."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def retrieved(self, result: Any) -> None:
        self.metrics.observe_timings(result.timings)

    def answered(self, result: Any, answer: Answer) -> None:
        self.metrics.observe_usage(answer.usage)
        self.metrics.queries.labels(result.mode, answer.kind).inc()

    def searched(self, result: Any) -> None:
        self.metrics.searches.labels(result.mode).inc()


def _service(permission: str) -> Callable[..., KnowledgeService]:
    def make(request: Request, p: Principal = Depends(require(permission))) -> KnowledgeService:
        st = get_state(request)
        return KnowledgeService(st.services, p.tenant, observer=st.observer)

    return make


State = Annotated[AppState, Depends(get_state)]  # what the app holds: jobs, write lock, audit log, metrics
ReaderKB = Annotated[KnowledgeService, Depends(_service("read"))]
AnalystKB = Annotated[KnowledgeService, Depends(_service("analyse"))]
IngesterKB = Annotated[KnowledgeService, Depends(_service("ingest"))]


class Audit:
    """One audit entry in the making: the route adds detail; the outcome follows from how the block ends."""

    def __init__(self) -> None:
        self.details: dict[str, Any] = {}
        self.outcome: str | None = None
        self.status: int | None = None
        self.deferred = False

    def detail(self, **kw: Any) -> None:
        self.details.update(kw)

    def fail(self, e: BaseException) -> None:
        """The block caught `e` itself (a stream reports errors as events): record it as it would have been."""
        self.outcome = outcome_of(e)
        self.status = _status(e)[0]
        self.details.update(error_detail(e))

    def defer(self) -> None:
        """Success is recorded later (a stream's end); only an error of this block is recorded here."""
        self.deferred = True


def outcome_of(e: BaseException) -> str:
    if isinstance(e, NotFoundError):
        return "not_found"
    if isinstance(e, (CypherRefusedError, SparqlRefusedError)):
        return "refused"
    return "error"


def error_detail(e: BaseException) -> dict[str, Any]:
    reason = getattr(e, "kind", None)
    return {"error": str(e)[:300], **({"reason": reason} if isinstance(reason, str) else {})}


@contextmanager
def audited(request: Request, action: str, target: str | None = None, *, ok: str = "ok",
            status: int | None = None) -> Iterator[Audit]:
    """Record one audit entry for the block: `ok` (or what the block set) when it ends, else the error's
    outcome (not_found, refused, error) and status; the error is raised on."""
    a = Audit()
    p: Principal | None = getattr(request.state, "principal", None)
    try:
        yield a
    except Exception as e:
        audit(request, p, action, outcome_of(e), target=target, status=_status(e)[0],
              detail={**a.details, **error_detail(e)})
        raise
    except BaseException:  # a stream whose client went away (GeneratorExit): it ended, unfinished
        audit(request, p, action, "aborted", target=target, detail=a.details or None)
        raise
    if not a.deferred:
        audit(request, p, action, a.outcome or ok, target=target, status=a.status or status,
              detail=a.details or None)
