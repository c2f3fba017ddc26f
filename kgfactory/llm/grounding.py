"""The groundedness gate: a generated answer is kept only if the sources it cites support what it says.

The citation check (citations.py) only removes markers to sources that do not exist; a model can still cite a
real source for a sentence that source never says, or cite nothing at all. The gate checks each sentence of the
checked text against the chunks it cites (all cited chunks when it carries no marker of its own):

- similarity: the best cosine, with the service's own embedder, between the sentence and a sentence (or two
  adjacent sentences) of those chunks; a paraphrase scores high, an invented fact about the same subject lower;
- numbers: every number the sentence states must appear in those chunks (years, counts, amounts are what a
  small model invents most, and embeddings barely see them);
- names: most capitalised names in the sentence must appear in those chunks.

An answer passes when it has at least one valid citation and enough of its sentences are supported. This is a
cheap entailment proxy, not an NLI model: it rejects inventions and unrelated text, and may reject a correct
answer that is a long way from the sources' wording (the extractive answer then stands in, which is honest).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..ports import Embedder
from ..retrieval.answer import sentences as chunk_sentences
from ..textnorm import normalise
from ..types import Grounding, SentenceSupport

_MARKS = re.compile(r"\[(\d+)\]")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_LEAD_MARKS = re.compile(r"^((?:\s*\[\d+\])+)\s*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-Z][\w'’-]*")
_WORD = re.compile(r"[^\W_]{2,}")
_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:and|but|which|who|while)\s+")
_ECHO = re.compile(r"^\s*(?:Sources?|Question|Answer|Graph facts[^:\n]*|Rules)\s*:", re.M | re.I)
MAX_EVIDENCE = 200  # per cited source: bounds the embedding work for a long chunk
# capitalised only because they start a sentence or are function words: not names
_NOT_NAMES = set("""a an the this that these those it its they them their there he she his her we our you your
i in on at of for from by with to and or but as if is are was were be been has have had do does did not no yes
after before during when where which who whom whose what why how while since until also however although
according sources source answer question based see more details note""".split())


@dataclass(frozen=True)
class GateThresholds:
    min_sim: float = 0.55
    min_names: float = 0.75
    min_words: float = 0.65
    min_supported: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {"min_sim": self.min_sim, "min_names": self.min_names, "min_words": self.min_words,
                "min_supported": self.min_supported}


def split_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence without its markers, the marker numbers it carries). A marker written after the full stop
    ("... in 2014. [1]") belongs to the sentence before it."""
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip()]
    out: list[list] = []
    for p in parts:
        m = _LEAD_MARKS.match(p)
        if m and out:
            out[-1][1].extend(int(n) for n in _MARKS.findall(m.group(1)))
            p = p[m.end():]
        marks = [int(n) for n in _MARKS.findall(p)]
        body = re.sub(r"\s+([.,;:!?])", r"\1", _MARKS.sub("", p)).strip(" -*•\t")
        if body or marks:
            out.append([body, marks])
    # a sentence with no content word ("See also.", "Yes.") states nothing to check
    return [(b, list(dict.fromkeys(m))) for b, m in out if content_stems(b) or numbers(b)]


def _evidence(src: str) -> list[str]:
    """What a sentence is compared with: the source's sentences, its clauses (an answer often restates one
    clause of a long sentence) and each pair of adjacent sentences (or one fact spread over two)."""
    ss = [src[s:e] for s, e in chunk_sentences(src)] or [src]
    clauses = [c.strip() for s in ss for c in _CLAUSE.split(s) if len(_WORD.findall(c)) >= 3]
    clauses = [c for c in clauses if c not in ss]
    return list(dict.fromkeys(ss + clauses + [f"{a} {b}" for a, b in zip(ss, ss[1:])]))[:MAX_EVIDENCE]


def _stem(w: str) -> str:
    w = w.lower()
    for suf in ("ing", "ers", "ies", "ed", "es", "er", "s"):
        if len(w) - len(suf) >= 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def content_stems(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text) if len(w) >= 3 and w.lower() not in _NOT_NAMES}


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def names(text: str) -> list[str]:
    """Capitalised words that look like names; the sentence's first word is capitalised anyway, so it counts
    only when the next word is capitalised too ("Marie Dubois founded ...")."""
    found = []
    for m in _NAME.finditer(text):
        w = m.group(0)
        if w.lower() in _NOT_NAMES:
            continue
        if not text[: m.start()].strip() and not _NAME.match(text[m.end():].lstrip()):
            continue
        found.append(w)
    return list(dict.fromkeys(found))


class GroundingGate:
    """`check(text, cited_texts)`: `text` is the citation-checked answer (markers renumbered so [k] is the k-th
    cited source) and `cited_texts[k-1]` that source's text."""

    def __init__(self, embedder: Embedder, thresholds: GateThresholds | None = None):
        self.embedder = embedder
        self.t = thresholds or GateThresholds()

    def check(self, text: str, cited_texts: list[str], question: str | None = None) -> Grounding:
        th = self.t.as_dict()
        if not text.strip():
            return Grounding(passed=False, reasons=["the model returned an empty answer"], thresholds=th)
        echo = _ECHO.search(text) or (question and len(question) > 12 and question.strip().lower() in text.lower())
        if echo:  # a copy of the prompt is "supported" by the sources it copies, and answers nothing
            return Grounding(passed=False, thresholds=th, reasons=[
                "the model echoed the prompt (its Sources:/Question:/Answer: lines or the question) instead of answering"])
        if not cited_texts:
            return Grounding(passed=False, reasons=["the answer cites no source it was given"], thresholds=th)
        sents = split_sentences(text)
        if not sents:
            return Grounding(passed=False, reasons=["the answer has no sentence to check"], thresholds=th)
        evidence = [_evidence(src) for src in cited_texts]
        flat = [e for ev in evidence for e in ev]
        owner = np.repeat(np.arange(len(evidence)), [len(ev) for ev in evidence])
        vecs = self.embedder.embed([s for s, _ in sents] + flat)
        sims = vecs[: len(sents)] @ vecs[len(sents):].T
        norm_src = [normalise(s) for s in cited_texts]
        raw_src = cited_texts
        src_words = [content_stems(s) for s in cited_texts]
        report = []
        for i, (sent, marks) in enumerate(sents):
            valid = [m for m in marks if 1 <= m <= len(cited_texts)]
            use = [m - 1 for m in valid] or list(range(len(cited_texts)))
            mask = np.isin(owner, use)
            sim = float(sims[i][mask].max()) if mask.any() else 0.0
            pool_raw = " ".join(raw_src[k] for k in use)
            pool_norm = " ".join(norm_src[k] for k in use)
            pool_nums = numbers(pool_raw)
            miss_num = sorted(n for n in numbers(sent) if n not in pool_nums)
            nm = names(sent)
            miss_names = [w for w in nm if normalise(w) not in pool_norm]
            name_share = 1.0 - len(miss_names) / len(nm) if nm else 1.0
            words = content_stems(sent)
            pool_words = set().union(*(src_words[k] for k in use))
            miss_words = sorted(words - pool_words)
            word_share = 1.0 - len(miss_words) / len(words) if words else 1.0
            why = []
            if sim < self.t.min_sim:
                why.append(f"similarity {sim:.2f} to the cited text is below {self.t.min_sim:.2f}")
            if miss_num:
                why.append("number(s) not in the cited text: " + ", ".join(miss_num))
            if name_share < self.t.min_names:
                why.append("name(s) not in the cited text: " + ", ".join(miss_names))
            if word_share < self.t.min_words:
                why.append(f"{word_share:.0%} of its words are in the cited text (least {self.t.min_words:.0%}); "
                           "missing: " + ", ".join(miss_words[:8]))
            if not valid:
                why.append("cites no source" + (" (checked against all cited sources)" if why else ""))
            ok = (sim >= self.t.min_sim and not miss_num and name_share >= self.t.min_names
                  and word_share >= self.t.min_words)
            report.append(SentenceSupport(sentence=sent, cited=valid, similarity=round(sim, 4),
                                          word_overlap=round(word_share, 4),
                                          numbers_missing=miss_num, names_missing=miss_names, supported=ok,
                                          reason="; ".join(why) or None))
        share = sum(s.supported for s in report) / len(report)
        reasons = []
        if share < self.t.min_supported:
            bad = [s for s in report if not s.supported]
            reasons.append(f"{len(bad)} of {len(report)} sentence(s) not supported by the sources they cite "
                           f"(supported share {share:.2f} < {self.t.min_supported:.2f})")
            reasons += [f"{s.sentence[:80]!r}: {s.reason}" for s in bad[:3]]
        return Grounding(passed=not reasons, reasons=reasons, sentences=report, supported_share=round(share, 4),
                         thresholds=th)
