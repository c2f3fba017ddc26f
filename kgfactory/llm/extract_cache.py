"""Cache of LLM extractions keyed by chunk text hash, prompt version, model and ontology version, in SQLite under
the data dir (llm/extract_cache.sqlite): a re-ingest of the same text with the same prompt costs no tokens."""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import LLMError

_SCHEMA = "CREATE TABLE IF NOT EXISTS extraction (key TEXT PRIMARY KEY, value TEXT NOT NULL, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"


class ExtractionCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.Error as e:
            raise LLMError(f"extraction cache {self.path} cannot be opened: {e}") from e

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i: i + 500]
                rows = self._db.execute(f"SELECT key, value FROM extraction WHERE key IN ({','.join('?' * len(part))})",
                                        part).fetchall()
                out.update((k, json.loads(v)) for k, v in rows)
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        if not items:
            return
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO extraction (key, value) VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in items.items()])
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM extraction").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
