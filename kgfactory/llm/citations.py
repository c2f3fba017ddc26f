"""Check an LLM answer's [n] citations against the sources it was given.

Markers to sources that exist are kept and renumbered in order of first use, so `[k]` in the final text is
`citations[k-1]`, as in extractive answers; markers to sources that were not given are removed and reported.
"""
from __future__ import annotations

import re

_MARK = re.compile(r"\s?\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def check_citations(text: str, n_sources: int) -> tuple[str, list[int], list[int]]:
    """-> (text with checked markers, source indexes (0-based) in citation order, invented numbers removed)."""
    order: list[int] = []
    removed: list[int] = []

    def sub(m: re.Match) -> str:
        kept = []
        for tok in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(tok)
            if 1 <= n <= n_sources:
                if n - 1 not in order:
                    order.append(n - 1)
                k = order.index(n - 1) + 1
                if k not in kept:
                    kept.append(k)
            elif n not in removed:
                removed.append(n)
        if not kept:
            return ""
        lead = " " if m.group(0)[:1].isspace() else ""
        return lead + "".join(f"[{k}]" for k in kept)

    out = _MARK.sub(sub, text)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out).strip()
    return out, order, removed
