"""A copy of data derived from the graph, kept current by the graph's revision counter.

Three things hold such a copy: the retriever's in-memory index (retrieval/index_upkeep.py), the RDF view
(ontology/rdf_view.py) and the analysts' per-tenant Cypher views (graph/falkordb_views.py). Each write or delete
moves a revision key (`graph.revision()`, `store.tenant_revision(tenant)`, the revision with the ontology's
hash); a copy is good while it was built at the key the source reports now. What they share, written once here:

- a reader whose copy is at the current key takes it without waiting for any builder;
- otherwise one builder at a time (the builder lock) makes a new copy, and a second caller that waited finds
  the first one's copy instead of building again;
- the (key, copy) pair is swapped whole under a short guard, so readers see a complete copy or the old one;
- a copy can be brought forward in place from the key just before (`advance`: this process's own write),
  which is cheaper than a rebuild; any other gap rebuilds.

Nothing here imports an adapter: the copies, their keys and how they are built belong to the callers.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

Lock = Any  # threading.Lock() / RLock() instances (their classes are factories, not types, before 3.13)


class DerivedView(Generic[K, V]):
    """One derived copy and the revision key it holds.

    build(key, old) -> (copy, key it holds): a complete copy at `key` (a load may see a newer revision than it
    was asked for: it returns the one it saw); `old` is the copy held so far, or None, for builders that patch.
    take(copy) runs under the guard on every copy handed to a reader (reference counting).
    replaced(old, new) runs under the guard after a swap and may return work to run once the guard is
    released (still under the builder lock), such as deleting the old copy's storage.
    restore() -> (key, copy) | None: a copy that outlived the process (kept on disk), looked up when none is held.
    The guard must be re-entrant when `replaced` or `take` use this view (or views sharing the guard) again.
    """

    def __init__(self, build: Callable[[K, V | None], tuple[V, K]], *, guard: Lock | None = None,
                 builder_lock: Lock | None = None, take: Callable[[V], V] | None = None,
                 replaced: Callable[[V | None, V], Callable[[], None] | None] | None = None,
                 restore: Callable[[], tuple[K, V] | None] | None = None):
        self._build = build
        self._guard = guard if guard is not None else threading.RLock()
        self._builder = builder_lock if builder_lock is not None else threading.Lock()
        self._take = take
        self._replaced = replaced
        self._restore = restore
        self._held: tuple[K, V] | None = None
        self.builds = 0  # copies built (not patched) through this view

    # -- reads -------------------------------------------------------------------------------------
    def get(self, key: K) -> V:
        """The copy at `key`, built if the one held is at another key."""
        return self.ensure(key)[0]

    def ensure(self, key: K) -> tuple[V, bool]:
        """(the copy at `key`, whether this call built it)."""
        with self._guard:
            v = self._at(key)
        if v is not None:
            return v, False
        with self._builder:  # one builder; a caller that waited finds the first one's copy
            with self._guard:
                v = self._at(key)
                old = self._held
            if v is not None:
                return v, False
            return self._install(*self._build(key, None if old is None else old[1])), True

    def peek(self) -> V | None:
        """The copy held now, whatever its key (no restore, no take)."""
        with self._guard:
            return None if self._held is None else self._held[1]

    def held_key(self) -> K | None:
        with self._guard:
            held = self._current_held()
            return None if held is None else held[0]

    # -- changes -----------------------------------------------------------------------------------
    def rebuild(self, key: K) -> V:
        """Build a copy at `key` whatever is held (an explicit rebuild)."""
        with self._builder:
            with self._guard:
                old = self._held
            return self._install(*self._build(key, None if old is None else old[1]))

    def advance(self, expect: K, to: K, apply: Callable[[V], None]) -> bool:
        """When the copy is at `expect`, `apply` changes it in place to what it is at `to` (the change is known
        and is all that moved); otherwise a rebuild at `to`. True when it was patched. Readers of in-place copies
        must hold the builder lock while they read."""
        with self._builder:
            with self._guard:
                held = self._current_held()
            if held is not None and held[0] == expect:
                apply(held[1])
                with self._guard:
                    self._held = (to, held[1])
                return True
            self._install(*self._build(to, None if held is None else held[1]))
            return False

    def drop(self) -> V | None:
        """Forget the held copy (closed, invalidated, evicted); returns it."""
        with self._guard:
            held, self._held = self._held, None
            return None if held is None else held[1]

    # -- internals (under the guard) -----------------------------------------------------------------
    def _current_held(self) -> tuple[K, V] | None:
        if self._held is None and self._restore is not None:
            self._held = self._restore()
        return self._held

    def _at(self, key: K) -> V | None:
        held = self._current_held()
        if held is None or held[0] != key:
            return None
        return self._take(held[1]) if self._take is not None else held[1]

    def _install(self, value: V, key: K) -> V:
        with self._guard:
            old = self._held
            self._held = (key, value)
            self.builds += 1
            out = self._take(value) if self._take is not None else value
            after = self._replaced(None if old is None else old[1], value) if self._replaced is not None else None
        if after is not None:
            after()
        return out
