"""Ask, stream and search for one tenant: validation, the tenant filter, the answerer call, and the hooks the API
counts metrics with. The request can narrow the search (tags, document ids), never widen it past the tenant."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence

from ..errors import InvalidInputError
from ..ports import StreamingAnswerer
from ..types import Answer
from . import limits as L
from .results import AskResult, SearchResult

if TYPE_CHECKING:
    from ..retrieval.models import RetrievalResult

REJECTED_NOTICE = ("The generated text above is withdrawn: the groundedness gate found it not supported by its "
                   "sources. The answer below is quoted from the sources instead.")


class Observer(Protocol):
    """What the API listens to (timings, token usage, counts) without writing ask a second time."""

    def retrieved(self, result: "RetrievalResult") -> None: ...

    def answered(self, result: "RetrievalResult", answer: Answer) -> None: ...

    def searched(self, result: "RetrievalResult") -> None: ...


class AnswerStream:
    """Answer text pieces (str), then the final AskResult. Retrieval has run when this exists, so a bad question
    or a store outage is raised by ask_stream() itself, before any piece; `retrieval` holds the chunks found."""

    def __init__(self, retrieval: SearchResult, items: Iterator[str | AskResult]):
        self.retrieval = retrieval
        self._items = items

    def __iter__(self) -> "AnswerStream":
        return self

    def __next__(self) -> str | AskResult:
        return next(self._items)


def grounding_detail(ans: AskResult) -> dict[str, Any]:
    """The gate's decision for an audit entry: {} when no gate ran (extractive answer, gate off)."""
    g = ans.grounding
    if g is None:
        return {}
    return {"grounded": g.passed, "grounding_reasons": [r[:200] for r in g.reasons[:4]],
            "supported_share": g.supported_share}


def ask_result(ans: Answer, result: "RetrievalResult") -> AskResult:
    return AskResult(question=result.query, answer=ans.text, kind=ans.kind, citations=ans.citations,
                     evidence=result.evidence, chunks=result.chunks, seeds=result.seeds,
                     timings=ans.timings or result.timings, model=ans.model, prompt_version=ans.prompt_version,
                     usage=ans.usage, note=ans.note, grounding=ans.grounding, abstained=ans.abstained,
                     support=ans.support, related=ans.related)


def with_usage(ans: Answer, spent: dict[str, int] | None) -> Answer:
    """The answer with tokens spent before it (a chat's condense step) added to its usage."""
    if spent:
        u = ans.usage or {}
        ans.usage = {k: u.get(k, 0) + spent.get(k, 0) for k in dict.fromkeys([*u, *spent])}
    return ans


def search_result(result: "RetrievalResult") -> SearchResult:
    return SearchResult(question=result.query, mode=result.mode, top_k=result.top_k, chunks=result.chunks,
                        seeds=result.seeds, evidence=result.evidence, timings=result.timings,
                        empty_store=result.empty_store)


def _strings(name: str, values: Sequence[str] | None, most: int) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out = list(values)
    if len(out) > most or not all(isinstance(v, str) and 0 < len(v) <= L.MAX_ID_CHARS for v in out):
        raise InvalidInputError(f"{name}: at most {most} strings of 1-{L.MAX_ID_CHARS} characters")
    return out


class Asking:
    """Mixin of KnowledgeService: needs `services`, `tenant` and `observer`."""

    services: Any
    tenant: str
    observer: Observer | None

    def _retrieve(self, question: str, mode: str, top_k: int, tags: Sequence[str] | None,
                  doc_ids: Sequence[str] | None) -> "RetrievalResult":
        if not isinstance(question, str) or not question.strip() or len(question) > L.MAX_QUESTION_CHARS:
            raise InvalidInputError(f"question: 1-{L.MAX_QUESTION_CHARS} characters")
        if mode not in L.MODES:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(L.MODES)}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not L.MIN_TOP_K <= top_k <= L.MAX_TOP_K:
            raise InvalidInputError(f"top_k {top_k!r}: a whole number from {L.MIN_TOP_K} to {L.MAX_TOP_K}")
        f: dict[str, Any] = {"tenant": self.tenant}
        if tag := _strings("tags", tags, L.MAX_FILTER_TAGS):
            f["tag"] = tag
        if ids := _strings("doc_ids", doc_ids, L.MAX_FILTER_DOC_IDS):
            f["doc_id"] = ids
        result = self.services.retriever.search(question, mode=mode, top_k=top_k, filters=f)
        if self.observer is not None:
            self.observer.retrieved(result)
        return result

    def _answered(self, result: "RetrievalResult", ans: Answer) -> AskResult:
        if self.observer is not None:
            self.observer.answered(result, ans)
        return ask_result(ans, result)

    def ask(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
            tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> AskResult:
        """An answer from this tenant's documents, with citations, graph evidence and the chunks used."""
        result = self._retrieve(question, mode, top_k, tags, doc_ids)
        return self._answered(result, self.services.answerer.answer(result, tenant=self.tenant))

    def ask_stream(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
                   tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> AnswerStream:
        """As ask(), the text streamed: pieces as the answerer makes them, then the AskResult. An answerer that
        cannot stream sends its whole text as one piece."""
        result = self._retrieve(question, mode, top_k, tags, doc_ids)
        return AnswerStream(search_result(result), self._stream(result))

    def _stream(self, result: "RetrievalResult", instructions: str | None = None,
                spent: dict[str, int] | None = None) -> Iterator[str | AskResult]:
        """`instructions`: a chat's system messages; `spent`: tokens already used for this answer (a chat's
        condense step), added to the answer's usage."""
        answerer = self.services.answerer
        if not isinstance(answerer, StreamingAnswerer):  # the one capability check
            ans = answerer.answer(result, tenant=self.tenant, instructions=instructions)
            yield ans.text
            yield self._answered(result, with_usage(ans, spent))
            return
        for item in answerer.stream(result, tenant=self.tenant, instructions=instructions):
            if isinstance(item, Answer):
                yield self._answered(result, with_usage(item, spent))
            elif item:
                yield item

    def search(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
               tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> SearchResult:
        """Retrieval only: ranked chunks, seed entities, graph evidence, timings. No answerer runs."""
        result = self._retrieve(question, mode, top_k, tags, doc_ids)
        if self.observer is not None:
            self.observer.searched(result)
        return search_result(result)
