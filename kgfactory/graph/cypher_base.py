"""What every Cypher store part stands on: an adapter's `_run` (a write, or a read whose rows it ignores) and
`_rows` (rows as plain dicts), the labels of an ontology class, and the change log: the revision move of a
completed write with its entry (append_change, changes_since)."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..rows import ChangeRow
from . import cypher as Q

BATCH = 2000
CHANGE_RETENTION = 10_000  # change-log entries kept (KGF_CHANGELOG_RETENTION); older ones are trimmed
T = TypeVar("T")


def batches(rows: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


class CypherBase:
    """The plumbing the shared GraphStore methods (cypher_store.py, cypher_semantic.py, cypher_copy.py) call."""

    dialect = ""

    def __init__(self, labels_for: Callable[[str], list[str]] | None = None,
                 change_retention: int = CHANGE_RETENTION):
        self._labels_for: Callable[[str], list[str]] = labels_for or (lambda cls: [cls])
        self.change_retention = max(1, int(change_retention))

    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False) -> Any:
        raise NotImplementedError

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        raise NotImplementedError

    def append_change(self, kind: str, doc_ids: Sequence[str], tenants: Iterable[str | None] = ()) -> int:
        """Move the global revision (and each touched tenant's, or the 'all' one for kind 'all') and log the
        change in the same statement; returns the new revision. Entries past the retention window are trimmed."""
        ts = sorted({t for t in tenants if t is not None})
        keys = [Q.REVISION_ALL] if kind == "all" else [Q.REVISION_TENANT + t for t in ts]
        rows = self._rows(Q.LOG_CHANGE, {"kind": kind, "doc_ids": list(doc_ids), "tenants": ts, "keys": keys,
                                         "at": time.time()}, read_only=False)
        rev = int(rows[0]["revision"]) if rows else 0
        if rev > self.change_retention:
            self._run(Q.TRIM_CHANGES, {"upto": rev - self.change_retention})
        return rev

    def changes_since(self, revision: int) -> list[ChangeRow] | None:
        """The logged changes after `revision` up to the store's revision now, in order; None when the log does
        not hold every one of them (trimmed, or the revision moved without an entry: `kgf migrate`, an older
        version's write, a store reset), so the caller must reload whole. At most `change_retention` entries."""
        rows = self._rows(Q.CHANGES_SINCE, {"after": int(revision), "limit": self.change_retention})
        cur = int(rows[0]["current"] or 0) if rows else 0
        if cur == revision:
            return []
        if cur < revision or cur - revision > self.change_retention:
            return None
        got = [ChangeRow(revision=int(r["revision"]), kind=str(r["kind"]), doc_ids=list(r["doc_ids"] or []),
                         tenants=list(r["tenants"] or []), at=float(r["at"] or 0.0))
               for r in rows if r["revision"] is not None]
        if [c.revision for c in got] != list(range(revision + 1, cur + 1)):
            return None
        return got

    def revision(self) -> int:
        raise NotImplementedError

    def _set_labels(self, ids_by_labels: dict[tuple[str, ...], list[str]]) -> None:
        """SET e:A:B on entities, grouped by their label set (labels are checked names, see cypher.label_clause)."""
        for labels, ids in ids_by_labels.items():
            stmt = Q.SET_ENTITY_LABELS.format(labels=Q.label_clause(list(labels)))
            for batch in batches(ids):
                self._run(stmt, {"ids": list(batch)})
