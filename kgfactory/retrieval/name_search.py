"""Entity type-ahead: exact, prefix and fuzzy matches on entity names and aliases, inside one tenant.

Built from the retriever's graph index (graph_index.py), which already holds every entity's id, name, aliases,
class, tenant and mention count in memory and is kept at the graph's revision by index_upkeep.py (patched after
this process's ingests and deletes, reloaded on any other move). A tenant's table is built on first use at an
index and reused while the index is the same object, so a search costs dictionary and bisect lookups, not a
store round trip; a new index (any write) means one rebuild of the tenant's table on the next search.

Keys are the retriever's name keys (textnorm.normalise: case, punctuation, leading articles) folded further to
drop accents, so "Zoe", "zoé" and "ZOË" meet. Prefix matches look at the whole name, then at each word of it
("scor" finds "Hank Scorpio"); fuzzy matches (typos) take candidates that share character trigrams with the
query and keep those similar enough (difflib's ratio, against the name, its start and each word).
"""
from __future__ import annotations

import threading
import time
import unicodedata
import weakref
from bisect import bisect_left
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import chain
from typing import Any, Callable, Iterator

from ..textnorm import normalise

FUZZY_MIN = 0.75  # similarity a fuzzy match needs
FUZZY_CANDIDATES = 60  # names compared per query (those sharing the most trigrams with it)
MAX_TENANTS = 64  # tenant tables kept (least recently used dropped)


def fold(text: str) -> str:
    """The search key of a name or a query: textnorm.normalise, then accents dropped."""
    return unaccent(normalise(text))


def unaccent(key: str) -> str:
    if key.isascii():
        return key
    s = unicodedata.normalize("NFKD", key)
    return "".join(ch for ch in s if not unicodedata.combining(ch))


def trigrams(key: str) -> set[str]:
    padded = f"  {key} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching entity: its position in the graph index, how it matched and how well (0-1)."""

    pos: int
    match: str  # exact | prefix | fuzzy
    score: float


@dataclass
class NameTable:
    """One tenant's search keys. `keys[k]` owns entity positions `owners[k]`; `words` is every key and every
    word-suffix of a key ("hank scorpio", "scorpio"), sorted, with the key it came from."""

    keys: list[str] = field(default_factory=list)
    owners: list[list[int]] = field(default_factory=list)
    exact: dict[str, int] = field(default_factory=dict)  # key -> k
    words: list[str] = field(default_factory=list)
    word_key: list[int] = field(default_factory=list)  # words[j] is (a suffix of) keys[word_key[j]]
    _grams: dict[str, list[int]] | None = None  # trigram -> keys holding it (built on the first fuzzy search)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, names: dict[str, list[int]], tenant_of: list[str], tenant: str) -> "NameTable":
        t = cls()
        by_key: dict[str, list[int]] = {}
        for name, positions in names.items():
            own = [p for p in positions if tenant_of[p] == tenant]
            if own:
                by_key.setdefault(unaccent(name), []).extend(own)  # index keys are normalised already
        pairs: list[tuple[str, int]] = []
        for key, own in by_key.items():
            if not key:
                continue
            k = len(t.keys)
            t.keys.append(key)
            t.owners.append(own if len(own) == 1 else sorted(set(own)))
            t.exact[key] = k
            pairs.append((key, k))
            at = key.find(" ")
            while at >= 0:
                pairs.append((key[at + 1:], k))
                at = key.find(" ", at + 1)
        pairs.sort()
        t.words = [w for w, _ in pairs]
        t.word_key = [k for _, k in pairs]
        return t

    def search(self, q: str, limit: int, keep: Callable[[int], bool] = lambda pos: True,
               rank: Callable[[int], Any] = lambda pos: 0) -> list[Hit]:
        """At most `limit` entities for the folded query `q`: exact, then prefix, then fuzzy matches; within a
        kind, by score then `rank(pos)` (smaller first). `keep(pos)` filters (by class)."""
        out: dict[int, Hit] = {}

        def add(hits: list[Hit]) -> None:
            for h in sorted(hits, key=lambda h: (-h.score, rank(h.pos))):
                if len(out) >= limit:
                    return
                if h.pos not in out and keep(h.pos):
                    out[h.pos] = h

        k = self.exact.get(q)
        if k is not None:
            add([Hit(p, "exact", 1.0) for p in self.owners[k]])
        if len(out) < limit:
            add(list(self._prefix(q, k)))
        if len(out) < limit and len(q) >= 3:
            add(self._fuzzy(q, {h.pos for h in out.values()}))
        return list(out.values())

    def _prefix(self, q: str, exact: int | None, cap: int = 2000) -> Iterator[Hit]:
        """Keys starting with q (score 0.9 less a little for each character more), then keys with a later word
        starting with q (0.8 less the same)."""
        seen = {exact}
        j = bisect_left(self.words, q)
        while j < len(self.words) and j - bisect_left(self.words, q) < cap and self.words[j].startswith(q):
            k = self.word_key[j]
            if k not in seen:
                seen.add(k)
                key = self.keys[k]
                base = 0.9 if key.startswith(q) else 0.8
                score = round(base - 0.1 * (1 - len(q) / max(len(key), 1)), 4)
                yield from (Hit(p, "prefix", score) for p in self.owners[k])
            j += 1

    def grams(self) -> dict[str, list[int]]:
        with self._lock:
            if self._grams is None:
                grams: dict[str, list[int]] = {}
                for k, key in enumerate(self.keys):
                    for g in trigrams(key):
                        grams.setdefault(g, []).append(k)
                self._grams = grams
            return self._grams

    def _fuzzy(self, q: str, taken: set[int]) -> list[Hit]:
        grams, qg = self.grams(), trigrams(q)
        counts = Counter(chain.from_iterable(grams.get(g, ()) for g in qg))  # counted in C
        need = max(1, len(qg) // 2)  # one typo changes at most three trigrams
        best = [k for k, n in counts.most_common(FUZZY_CANDIDATES) if n >= need]
        hits = []
        matcher = SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(q)  # the query is analysed once; each name is compared to it
        for k in best:
            sim = similarity(q, self.keys[k], matcher)
            if sim >= FUZZY_MIN:
                hits += [Hit(p, "fuzzy", round(0.7 * sim, 4)) for p in self.owners[k] if p not in taken]
        return hits


def similarity(q: str, key: str, matcher: SequenceMatcher | None = None) -> float:
    """How alike a query and a name are: the best difflib ratio against the whole name, its start (as long as
    the query: a typo in what was typed so far) and each word-suffix of it. `matcher`: one with seq2 = q."""
    parts = [key]
    if len(q) >= 4 and len(key) > len(q):
        parts.append(key[:len(q)])
    at = key.find(" ")
    while at >= 0:
        rest = key[at + 1:]
        parts += [rest, rest[:len(q)]] if len(rest) > len(q) >= 4 else [rest]
        at = key.find(" ", at + 1)
    if matcher is None:
        matcher = SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(q)
    best = 0.0
    for p in parts:
        matcher.set_seq1(p)
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:  # cheap upper bounds first
            best = max(best, matcher.ratio())
    return best


class NameSearch:
    """Per-tenant name tables over the retriever's current graph index, rebuilt when the index changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: OrderedDict[str, tuple[Any, NameTable]] = OrderedDict()
        self.builds = 0
        self.last_build_s = 0.0

    def table(self, idx: Any, tenant: str) -> NameTable:
        """`idx`: a GraphIndex (entity_tenant and names read). The table of `tenant` at that index (held by a weak
        reference, so a table never keeps an old index alive)."""
        with self._lock:
            held = self._tables.get(tenant)
            if held is not None and held[0]() is idx:
                self._tables.move_to_end(tenant)
                return held[1]
            t = time.perf_counter()
            table = NameTable.build(idx.names, idx.entity_tenant, tenant)
            self.last_build_s = time.perf_counter() - t
            self.builds += 1
            self._tables[tenant] = (weakref.ref(idx), table)
            self._tables.move_to_end(tenant)
            while len(self._tables) > MAX_TENANTS:
                self._tables.popitem(last=False)
            return table
