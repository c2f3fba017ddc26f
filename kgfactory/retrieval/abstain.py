"""Abstention: when nothing retrieved resembles the question, the answer says the knowledge base does not hold it
and lists the nearest sources as possibly related, instead of quoting unrelated sentences with citations.

The support score is the best cosine between the question and a retrieved passage or one of its sentences: the
vectors dense retrieval and the extractive answerer compute anyway. It measures the embedder's sense of "about the
same thing", not anything fitted to one corpus, so one threshold serves any knowledge base embedded with the same
model. The threshold (KGF_ABSTAIN_THRESHOLD) was chosen on MuSiQue and checked untouched on HotpotQA
(bench/abstain.py, BENCHMARKS.md).
"""
from __future__ import annotations

from typing import Iterable

from ..types import Answer, RelatedSource
from .models import RetrievalResult

NOT_IN_KB = "Not in the knowledge base: none of its sources answers this question."


def support_score(result: RetrievalResult, sentence_sims: Iterable[float]) -> float:
    """Best cosine of the question to a retrieved chunk (dense score) or to one of their sentences; 0.0 when
    nothing was retrieved. A chunk reached through the graph alone has no dense score: its sentences speak for it."""
    best = [c.vector_score for c in result.chunks if c.vector_score is not None]
    best.extend(float(s) for s in sentence_sims)
    return round(max(best), 4) if best else 0.0


def related_sources(result: RetrievalResult, chunk_sims: dict[str, float], most: int = 3) -> list[RelatedSource]:
    """The nearest chunks, one per document, best first: shown as possibly related, never cited."""
    out: list[RelatedSource] = []
    seen: set[str] = set()
    scored = []
    for ch in result.chunks:
        sims = [s for s in (ch.vector_score, chunk_sims.get(ch.id)) if s is not None]
        scored.append((max(sims) if sims else 0.0, ch))
    for score, ch in sorted(scored, key=lambda t: -t[0]):
        if ch.doc_id in seen:
            continue
        seen.add(ch.doc_id)
        out.append(RelatedSource(doc_id=ch.doc_id, title=ch.title, chunk_id=ch.id, source=ch.source,
                                 page=ch.page, score=round(float(score), 4)))
        if len(out) >= most:
            break
    return out


def abstained_answer(result: RetrievalResult, support: float, threshold: float, related: list[RelatedSource],
                     timings: dict[str, float]) -> Answer:
    """The answer that says so: no citations, the nearest sources named in the text and in `related`."""
    text = NOT_IN_KB
    if related:
        text += " Possibly related: " + "; ".join(f'"{r.title or r.doc_id}"' for r in related) + "."
    note = (f"Abstained: the best match to the question scores {support:.2f}, below the abstention threshold "
            f"{threshold:.2f} (KGF_ABSTAIN_THRESHOLD; 0 turns abstention off).")
    return Answer(question=result.query, text=text, kind="none", abstained=True, support=support, related=related,
                  note=note, timings=timings)
