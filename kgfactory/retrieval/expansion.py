"""The second round of a multi-hop search, without an LLM: the entities of the first round's best chunks
become seeds, so the page about a bridge entity (the film's director, named only on the film's page) gets the
restart mass the question could not give it. The LLM-free analogue of iterative retrieval (IRCoT's next query
is, in effect, the bridge entity's name)."""
from __future__ import annotations

import numpy as np

from .graph_index import GraphIndex

FROM_CHUNKS = 3  # how many of the first round's chunks pass their entities on
MAX_NEW_SEEDS = 10


def expansion_seeds(idx: GraphIndex, ranked: list[tuple[str, float]], seeds: list[tuple[int, float]],
                    scope: np.ndarray | None, weight: float) -> list[tuple[int, float]]:
    """New (entity, weight) seeds from the top chunks of `ranked` (fused scores, best first), each weighted by
    its chunk's score and its specificity; together they carry `weight` times the question's own seed mass.
    Entities with a page about them are preferred: a bridge is worth following when it leads somewhere."""
    if not ranked or weight <= 0:
        return []
    have = {i for i, _ in seeds}
    spec = idx.specificity()
    has_page = idx.has_page()
    top = sorted(ranked, key=lambda t: (-round(t[1], 9), t[0]))[:FROM_CHUNKS]  # ties by id: row order is no signal
    best = max(s for _, s in top) or 1.0
    cand: dict[int, float] = {}
    for cid, s in top:
        j = idx.c_pos.get(cid)
        if j is None:
            continue
        row = idx.mentions[j]
        own = set(idx.subjects[j].indices) if idx.subjects is not None else set()
        for e in row.indices:
            e = int(e)
            if e in have or e in own or (scope is not None and not scope[e]):
                continue
            w = (s / best) * float(spec[e]) * (1.0 if has_page[e] else 0.25)
            cand[e] = max(cand.get(e, 0.0), w)
    if not cand:
        return []
    chosen = sorted(cand.items(), key=lambda t: (-round(t[1], 9), idx.entity_ids[t[0]]))[:MAX_NEW_SEEDS]
    total = sum(w for _, w in chosen)
    mass = weight * (sum(w for _, w in seeds) or 1.0)
    return [(e, mass * w / total) for e, w in chosen]
