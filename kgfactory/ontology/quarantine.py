"""The quarantine: typed edges (and, after an ontology change, nodes) that the ontology does not admit.

Nothing refused goes silently into the graph, and nothing refused is silently lost: it lands here, one row per
(edge, chunk), with the reason and the ontology version that refused it, and `kgf ontology violations` lists it.
A SQLite file under the data directory (`quarantine.sqlite`), so several processes can read and write it.
Rows follow their document: deleting a document deletes its quarantined edges.
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import OntologyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,              -- 'edge' | 'node'
    tenant TEXT NOT NULL DEFAULT 'default',
    doc_id TEXT NOT NULL DEFAULT '',
    chunk_id TEXT NOT NULL DEFAULT '',
    source_id TEXT NOT NULL,
    source_name TEXT NOT NULL DEFAULT '',
    source_class TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    target_name TEXT NOT NULL DEFAULT '',
    target_class TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,            -- 'ingest' | 'ontology-change'
    ontology_version TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (kind, source_id, type, target_id, chunk_id)
);
CREATE INDEX IF NOT EXISTS quarantine_doc ON quarantine (doc_id);
CREATE INDEX IF NOT EXISTS quarantine_tenant ON quarantine (tenant);
"""
COLUMNS = ("kind", "tenant", "doc_id", "chunk_id", "source_id", "source_name", "source_class", "type", "target_id",
           "target_name", "target_class", "reason", "origin", "ontology_version")


class Quarantine:
    """Append, list, count and delete-by-document over one SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
            except sqlite3.Error as e:
                raise OntologyError(f"cannot open the quarantine at {self.path}: {e}") from e
            self._db = db
        return self._db

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert rows (dicts with COLUMNS); the same (kind, edge, chunk) twice is kept once. Returns new rows."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        vals = [tuple(str(r.get(c) or "") for c in COLUMNS) + (now,) for r in rows]
        if not vals:
            return 0
        sql = f"INSERT OR IGNORE INTO quarantine ({', '.join(COLUMNS)}, created_at) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
        with self._lock:
            db = self._conn()
            before = db.total_changes
            with db:
                db.executemany(sql, vals)
            return db.total_changes - before

    def add_violations(self, violations: Sequence, doc_of: dict[str, str], tenant: str, ontology_version: str,
                       origin: str = "ingest") -> int:
        """Edges the extractor (or an RDF import: origin "import") refused (types.RelationViolation), one row per
        supporting chunk."""
        rows = []
        for v in violations:
            for cid in v.chunk_ids or [""]:
                rows.append({"kind": "edge", "tenant": tenant, "doc_id": doc_of.get(cid, ""), "chunk_id": cid,
                             "source_id": v.source_id, "source_name": v.source_name, "source_class": v.source_class,
                             "type": v.type, "target_id": v.target_id, "target_name": v.target_name,
                             "target_class": v.target_class, "reason": v.reason, "origin": origin,
                             "ontology_version": ontology_version})
        return self.add(rows)

    def list(self, tenant: str | None = None, kind: str | None = None, doc_id: str | None = None,
             limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        where, args = self._where(tenant, kind, doc_id)
        sql = f"SELECT * FROM quarantine{where} ORDER BY id LIMIT ? OFFSET ?"
        with self._lock:
            cur = self._conn().execute(sql, (*args, int(limit), int(offset)))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def count(self, tenant: str | None = None, kind: str | None = None, doc_id: str | None = None) -> int:
        where, args = self._where(tenant, kind, doc_id)
        with self._lock:
            return int(self._conn().execute(f"SELECT count(*) FROM quarantine{where}", args).fetchone()[0])

    def delete_document(self, doc_id: str) -> int:
        with self._lock:
            db = self._conn()
            with db:
                return db.execute("DELETE FROM quarantine WHERE doc_id = ?", (doc_id,)).rowcount

    @staticmethod
    def _where(tenant, kind, doc_id) -> tuple[str, tuple]:
        conds, args = [], []
        for col, val in (("tenant", tenant), ("kind", kind), ("doc_id", doc_id)):
            if val is not None:
                conds.append(f"{col} = ?")
                args.append(val)
        return (" WHERE " + " AND ".join(conds)) if conds else "", tuple(args)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
