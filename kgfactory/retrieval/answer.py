"""The answer step with no LLM: the best-supported sentences of the retrieved chunks, each cited.

It says plainly that it is extractive. A citation's span is in the document's own text
(chunk start + the sentence's offset in the chunk), so it points into the source.
"""
from __future__ import annotations

import re
import time
from typing import Iterator

import numpy as np

from ..ports import Embedder
from ..textnorm import normalise
from ..types import Answer, Citation
from .abstain import abstained_answer, related_sources, support_score
from .models import RetrievalResult

_SENT = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n|$)")
NO_KNOWLEDGE = "No knowledge yet: the knowledge base is empty. Ingest documents first (kgf ingest PATH)."
NOTHING_FOUND = "Nothing in the knowledge base matches this question."
EXTRACTIVE_NOTE = "Extractive answer (no LLM configured): the most relevant sentences from the sources, quoted."


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of sentences in text, whitespace trimmed."""
    out = []
    for m in _SENT.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e - s >= 12:
            out.append((s, e))
    return out


class ExtractiveAnswerer:
    def __init__(self, embedder: Embedder, max_sentences: int = 3, max_chunks: int = 5, per_chunk: int = 1,
                 max_embedded: int | None = 8, abstain_below: float = 0.0):
        self.embedder = embedder
        # support (best question-to-source cosine, abstain.py) under this: say the KB does not hold it; 0 = never
        self.abstain_below = abstain_below
        self.max_sentences, self.max_chunks, self.per_chunk = max_sentences, max_chunks, per_chunk
        # embedding every candidate sentence is most of an extractive answer's cost on a CPU, so only the best
        # `max_embedded` by the cheap features (names, word overlap, chunk rank) plus each chunk's best are embedded
        # (None: all). MuSiQue, bench/answer.py: 8 quotes the gold answer as often as all, at about half the time
        self.max_embedded = max_embedded

    def stream(self, result: RetrievalResult, tenant: str | None = None,
               instructions: str | None = None) -> Iterator[str | Answer]:
        """Same shape as a generating answerer's stream, so callers can always stream: the text, then the Answer."""
        a = self.answer(result, tenant=tenant)
        yield a.text
        yield a

    def answer(self, result: RetrievalResult, tenant: str | None = None, instructions: str | None = None) -> Answer:
        """`tenant` and `instructions` are accepted for a uniform answerer interface: extractive answers cost no
        tokens and quote the sources whatever the operator asks."""
        t = time.perf_counter()
        if result.empty_store:
            return Answer(question=result.query, text=NO_KNOWLEDGE, kind="none", timings=result.timings)
        cands, sims, scores = self._scored(result)
        if not cands:
            return Answer(question=result.query, text=NOTHING_FOUND, kind="none", timings=result.timings)
        support = support_score(result, sims)
        if self.abstain_below > 0 and support < self.abstain_below:
            return self._abstain(result, cands, sims, support, t)
        chosen: list = []
        per: dict[str, int] = {}
        for i in np.argsort(-np.asarray(scores)):
            rank, ch, s, e = cands[i]
            if per.get(ch.id, 0) >= self.per_chunk:
                continue
            per[ch.id] = per.get(ch.id, 0) + 1
            chosen.append(cands[i])
            if len(chosen) >= self.max_sentences:
                break
        citations, parts = [], []
        for n, (rank, ch, s, e) in enumerate(chosen, 1):
            text = ch.text[s:e]
            citations.append(Citation(doc_id=ch.doc_id, title=ch.title, chunk_id=ch.id, start=ch.start + s,
                                      end=ch.start + e, page=ch.page, source=ch.source, text=text))
            parts.append(f"{text} [{n}]")
        timings = dict(result.timings)
        timings["answer"] = round((time.perf_counter() - t) * 1000, 3)
        return Answer(question=result.query, text=" ".join(parts), kind="extractive", citations=citations,
                      evidence=[e.model_dump() for e in result.evidence], timings=timings, support=support)

    def abstention(self, result: RetrievalResult) -> tuple[float | None, Answer | None]:
        """(support, the abstaining answer or None): a generating answerer asks this before it spends tokens on
        context that cannot hold the answer. (None, None) when abstention is off or there is nothing to judge."""
        if self.abstain_below <= 0 or result.empty_store or not result.chunks:
            return None, None
        t = time.perf_counter()
        cands, sims, _ = self._scored(result)
        if not cands:
            return None, None
        support = support_score(result, sims)
        return support, (self._abstain(result, cands, sims, support, t) if support < self.abstain_below else None)

    def _abstain(self, result: RetrievalResult, cands: list, sims: list[float], support: float, t0: float) -> Answer:
        per_chunk: dict[str, float] = {}
        for (_, ch, _, _), sim in zip(cands, sims):
            per_chunk[ch.id] = max(per_chunk.get(ch.id, -1.0), sim)
        timings = dict(result.timings)
        timings["answer"] = round((time.perf_counter() - t0) * 1000, 3)
        return abstained_answer(result, support, self.abstain_below, related_sources(result, per_chunk), timings)

    def _scored(self, result: RetrievalResult) -> tuple[list, list[float], list[float]]:
        """Candidate sentences (chunk rank, chunk, start, end), each one's cosine to the question, and its score
        (cosine plus the cheap features)."""
        cands = []  # (chunk rank, chunk, start, end)
        for rank, ch in enumerate(result.chunks[: self.max_chunks]):
            for s, e in sentences(ch.text):
                cands.append((rank, ch, s, e))
        if not cands:
            return [], [], []
        q_words = set(normalise(result.query).split())
        seed_names = {normalise(s.name) for s in result.seeds}
        cheap = []
        wanted = set(result.answer_classes)
        for rank, ch, s, e in cands:
            sent = normalise(ch.text[s:e])
            bonus = 0.1 * sum(1 for n in seed_names if n and n in sent)
            # a sentence naming an entity of the class the question asks for ("which country") may hold the answer
            if wanted and any(ent.label in wanted and normalise(ent.name) in sent and normalise(ent.name) not in q_words
                              for ent in ch.entities):
                bonus += 0.3
            overlap = len(q_words & set(sent.split())) / max(len(q_words), 1)
            cheap.append(bonus + 0.2 * overlap - 0.03 * rank)
        if self.max_embedded and len(cands) > self.max_embedded:
            order = list(np.argsort(-np.asarray(cheap), kind="stable"))
            keep = set(order[: self.max_embedded])
            best_of: dict[str, int] = {}
            for i in order:
                best_of.setdefault(cands[i][1].id, i)
            keep |= set(best_of.values())
            keep_list = sorted(keep)
            cands, cheap = [cands[i] for i in keep_list], [cheap[i] for i in keep_list]
        vecs = self.embedder.embed([result.query] + [c[1].text[c[2]:c[3]] for c in cands])
        sims = [float(x) for x in vecs[1:] @ vecs[0]]
        return cands, sims, [sim + c for sim, c in zip(sims, cheap)]
