"""Grounded generation: the retrieved context becomes a prompt asking for an answer that cites sources as [n];
the citations are checked against the sources given, then the groundedness gate (grounding.py) checks that the
cited sources support each sentence. When the gate rejects the answer, or the LLM is unavailable (down, timing
out, breaker open), the extractive answer is returned instead, marked with a note; a spent token budget is
raised, not hidden. When the sources do not resemble the question at all (support below the abstention
threshold, retrieval/abstain.py) the LLM is not called: the answer says the knowledge base does not hold it, the
same decision and text as without an LLM, and no tokens go to context that cannot hold the answer.
"""
from __future__ import annotations

import logging
import time
from typing import Iterator

from ..errors import LLMBudgetError, LLMError
from ..ports import LLM
from ..retrieval.models import RetrievalResult, RetrievedChunk
from ..types import Answer, Citation, Completion
from .citations import check_citations
from .grounding import GateThresholds, GroundingGate
from .prompts import Prompt, load_prompt

log = logging.getLogger(__name__)
ANSWER_PROMPT = "answer_v2"


class GeneratingAnswerer:
    """`answer(result)` -> Answer(kind='generated'); `stream(result)` -> token strings, then the checked Answer."""

    def __init__(self, llm: LLM, fallback, prompt: Prompt | None = None, context_chars: int = 8000,
                 max_sources: int = 8, default_tenant: str = "default",
                 ground: GateThresholds | None = GateThresholds()):
        self.llm, self.fallback = llm, fallback
        self.prompt = prompt or load_prompt(ANSWER_PROMPT)
        self.context_chars, self.max_sources = context_chars, max_sources
        self.default_tenant = default_tenant
        self.ground = ground  # None: no groundedness gate (generated answers are returned as the model wrote them)

    @property
    def embedder(self):  # the extractive fallback's embedder (tests share one loaded model)
        return self.fallback.embedder

    @embedder.setter
    def embedder(self, value) -> None:
        self.fallback.embedder = value

    # -- prompt -------------------------------------------------------------------------------------
    def sources(self, result: RetrievalResult) -> list[RetrievedChunk]:
        return result.chunks[: self.max_sources]

    @staticmethod
    def _body(ch: RetrievedChunk) -> str:
        """A source as the prompt shows it: the chunk and the start of the next one."""
        return ch.text + (" " + ch.neighbours["next"] if ch.neighbours.get("next") else "")

    def messages(self, result: RetrievalResult, instructions: str | None = None) -> list[dict[str, str]]:
        blocks, room = [], self.context_chars
        for n, ch in enumerate(self.sources(result), 1):
            body = self._body(ch)[: max(room, 0)]
            if not body:
                break
            blocks.append(f"[{n}] {ch.title}\n{body}")
            room -= len(body)
        facts = [" ".join(f"{a} -[{r}]-> {b}" if i == 0 else f"-[{r}]-> {b}" for i, (a, r, b) in enumerate(ev.hops))
                 for ev in result.evidence[:5]]
        context = "\n\n".join(blocks)
        if facts:
            context += "\n\nGraph facts (not citable):\n" + "\n".join(f"- {f}" for f in dict.fromkeys(facts))
        msgs = self.prompt.messages(context=context, question=result.query)
        if instructions and instructions.strip():  # a chat's system messages: the operator's, after the rules
            msgs[0]["content"] = (msgs[0]["content"] + "\n\nOperator instructions (follow them unless they conflict "
                                  "with the rules above):\n" + instructions.strip()).strip()
        return msgs

    # -- answers ------------------------------------------------------------------------------------
    def answer(self, result: RetrievalResult, tenant: str | None = None, instructions: str | None = None) -> Answer:
        if result.empty_store or not result.chunks:
            return self.fallback.answer(result)
        support, abstained = self.fallback.abstention(result)
        if abstained is not None:  # decided before the call: context that cannot hold the answer costs no tokens
            return abstained
        t = time.perf_counter()
        try:
            c = self.llm.complete(self.messages(result, instructions), tenant=tenant or self.default_tenant)
        except LLMBudgetError:
            raise
        except LLMError as e:
            return self._fallback(result, e)
        return self._supported(self._finish(result, c, t), support)

    def stream(self, result: RetrievalResult, tenant: str | None = None,
               instructions: str | None = None) -> Iterator[str | Answer]:
        """Token strings as the model writes them, then the final Answer (citations checked: its text is the one
        to keep, since invented markers were already streamed). Falls back like `answer`."""
        if result.empty_store or not result.chunks:
            yield from self.fallback.stream(result)
            return
        support, abstained = self.fallback.abstention(result)
        if abstained is not None:
            yield abstained.text
            yield abstained
            return
        t = time.perf_counter()
        try:
            for item in self.llm.stream(self.messages(result, instructions), tenant=tenant or self.default_tenant):
                if isinstance(item, Completion):
                    yield self._supported(self._finish(result, item, t), support)
                    return
                yield item
        except LLMBudgetError:
            raise
        except LLMError as e:
            yield self._fallback(result, e)

    @staticmethod
    def _supported(a: Answer, support: float | None) -> Answer:
        if a.support is None:
            a.support = support
        return a

    def _finish(self, result: RetrievalResult, c: Completion, t0: float) -> Answer:
        srcs = self.sources(result)
        text, order, removed = check_citations(c.text, len(srcs))
        citations = [Citation(doc_id=ch.doc_id, title=ch.title, chunk_id=ch.id, start=ch.start, end=ch.end,
                              page=ch.page, source=ch.source, text=ch.text) for ch in (srcs[i] for i in order)]
        notes = []
        if removed:
            notes.append("removed citation(s) " + ", ".join(f"[{n}]" for n in removed)
                         + f" to sources the model was not given (it had {len(srcs)})")
            log.warning("LLM %s cited sources it was not given: %s", c.model, removed)
        if not citations:
            notes.append("the model cited no source: check the answer against the sources")
        grounding = None
        if self.ground is not None:
            gate = GroundingGate(self.fallback.embedder, self.ground)
            grounding = gate.check(text, [self._body(srcs[i]) for i in order], question=result.query)
            if not grounding.passed:
                return self._rejected(result, c, grounding, removed, t0)
        timings = dict(result.timings)
        timings["answer"] = round((time.perf_counter() - t0) * 1000, 3)
        return Answer(question=result.query, text=text, kind="generated", citations=citations,
                      evidence=[e.model_dump() for e in result.evidence], timings=timings, model=c.model,
                      prompt_version=self.prompt.version, usage=c.usage(), removed_citations=removed,
                      note="; ".join(notes) or None, grounding=grounding)

    def _rejected(self, result: RetrievalResult, c: Completion, grounding, removed: list[int], t0: float) -> Answer:
        """The gate said no: the extractive answer, marked, with the model's text kept for debugging only."""
        log.warning("groundedness gate rejected the answer of %s: %s", c.model, "; ".join(grounding.reasons[:2]))
        a = self.fallback.answer(result)
        grounding.rejected_text = c.text
        why = grounding.reasons[0] if grounding.reasons else "not supported"
        a.note = (f"The generated answer was rejected by the groundedness gate ({why}); extractive answer instead: "
                  "the most relevant sentences, quoted.")
        a.grounding, a.model, a.prompt_version = grounding, c.model, self.prompt.version
        a.usage, a.removed_citations = c.usage(), removed
        a.timings["answer"] = round((time.perf_counter() - t0) * 1000, 3)
        return a

    def _fallback(self, result: RetrievalResult, e: LLMError) -> Answer:
        log.warning("LLM unavailable, answering extractively: %s", e)
        a = self.fallback.answer(result)
        a.note = f"LLM unavailable ({e}); extractive answer instead: the most relevant sentences, quoted."
        return a
