"""What every Cypher store part stands on: an adapter's `_run` (a write, or a read whose rows it ignores) and
`_rows` (rows as plain dicts), the labels of an ontology class, and the revision bump of a completed write."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from . import cypher as Q

BATCH = 2000
T = TypeVar("T")


def batches(rows: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


class CypherBase:
    """The plumbing the shared GraphStore methods (cypher_store.py, cypher_semantic.py, cypher_copy.py) call."""

    dialect = ""

    def __init__(self, labels_for: Callable[[str], list[str]] | None = None):
        self._labels_for: Callable[[str], list[str]] = labels_for or (lambda cls: [cls])

    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False) -> Any:
        raise NotImplementedError

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _bump(self, tenants: Iterable[str | None]) -> None:
        """One move of the global revision, and of each touched tenant's (see cypher.BUMP_REVISIONS)."""
        keys = ["revision"] + sorted(Q.REVISION_TENANT + t for t in tenants if t is not None)
        self._run(Q.BUMP_REVISIONS, {"keys": keys})

    def _set_labels(self, ids_by_labels: dict[tuple[str, ...], list[str]]) -> None:
        """SET e:A:B on entities, grouped by their label set (labels are checked names, see cypher.label_clause)."""
        for labels, ids in ids_by_labels.items():
            stmt = Q.SET_ENTITY_LABELS.format(labels=Q.label_clause(list(labels)))
            for batch in batches(ids):
                self._run(stmt, {"ids": list(batch)})
