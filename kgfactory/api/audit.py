"""Append-only audit log: who, tenant, action, target, time, outcome.

SQLite under the data dir; triggers refuse UPDATE and DELETE, so the log can only grow (short of deleting
the file, which is outside what the service can do). `kgf audit` and `GET /v1/audit` read it.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, key_id TEXT, who TEXT, tenant TEXT,
    action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, status INTEGER, request_id TEXT, detail TEXT);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant, seq);
"""

COLUMNS = ("seq", "ts", "key_id", "who", "tenant", "action", "target", "outcome", "status", "request_id", "detail")


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def record(self, *, action: str, outcome: str, tenant: str | None, key_id: str | None = None,
               who: str | None = None, target: str | None = None, status: int | None = None,
               request_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute("INSERT INTO audit (ts, key_id, who, tenant, action, target, outcome, status, request_id, "
                             "detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (ts, key_id, who, tenant, action, _text((target or "")[:500]), outcome, status,
                              request_id, json.dumps(detail, default=str)[:4000] if detail else None))

    def read(self, tenant: str | None = None, action: str | None = None, limit: int = 100,
             after: int = 0) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit WHERE seq > ?"
        args: list[Any] = [after]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if action is not None:
            sql += " AND action = ?"
            args.append(action)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for r in rows:
            d = dict(zip(COLUMNS, r))
            if d["detail"]:
                d["detail"] = json.loads(d["detail"])
            out.append(d)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _text(s: str) -> str:
    """Text SQLite can store: an unpaired surrogate (which UTF-8 cannot encode) becomes U+FFFD. The API refuses
    such input itself; a log line must still never be what fails a request."""
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if s else s


def audit_path(data_dir: Path) -> Path:
    return Path(data_dir) / "api" / "audit.sqlite"
