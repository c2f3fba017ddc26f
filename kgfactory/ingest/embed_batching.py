"""Length-bucketed batches: sort texts by token length, cut batches under a token budget, pad per batch.

Why: padding is wasted compute. Sorted, a batch of passages pads to its own longest member, and short texts
(entity names, 3-8 tokens) go in large batches instead of the passage-sized ones, where per-call overhead
dominates. Callers restore input order with the indices each batch carries."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


def length_buckets(lengths: Sequence[int], max_batch: int, token_budget: int) -> Iterator[np.ndarray]:
    """Index arrays into `lengths`, longest first; each batch holds at most `max_batch` texts and, padded to its
    longest member, at most `token_budget` tokens (always at least one text)."""
    lens = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    i, n = 0, len(order)
    while i < n:
        longest = max(int(lens[order[i]]), 1)
        size = max(1, min(max_batch, token_budget // longest, n - i))
        yield order[i:i + size]
        i += size


def pad_batch(ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) int64, right-padded with 0 to the batch's longest sequence."""
    width = max(len(x) for x in ids)
    out = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        out[row, :len(x)] = x
        mask[row, :len(x)] = 1
    return out, mask
