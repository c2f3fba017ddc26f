"""Per-tenant token accounting and budgets, persisted as JSON under the data dir (llm/usage.json).

A file lock makes the read-modify-write safe across processes (CLI and API on one data dir). The budget is
checked before a request goes out, so one request may overshoot it by its own size; the next is refused.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from filelock import FileLock

from ..errors import LLMBudgetError, LLMError
from ..types import Completion


class TokenLedger:
    def __init__(self, path: Path, budget: int = 0):
        self.path = Path(path)
        self.budget = budget
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._flock = FileLock(str(self.path) + ".lock", timeout=30)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, int]]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise LLMError(f"token ledger {self.path} is unreadable: {e}") from e

    def usage(self, tenant: str | None = None) -> dict:
        with self._lock, self._flock:
            data = self._read()
        return data.get(tenant, {}) if tenant is not None else data

    def used(self, tenant: str) -> int:
        return int(self.usage(tenant).get("total_tokens", 0))

    def check(self, tenant: str) -> None:
        """Raise LLMBudgetError when the tenant has spent its budget (0 = unlimited)."""
        if self.budget > 0:
            used = self.used(tenant)
            if used >= self.budget:
                raise LLMBudgetError(tenant, used, self.budget)

    def record(self, tenant: str, c: Completion) -> None:
        with self._lock, self._flock:
            data = self._read()
            row = data.setdefault(tenant, {})
            for k, v in (("prompt_tokens", c.prompt_tokens), ("completion_tokens", c.completion_tokens),
                         ("total_tokens", c.total_tokens), ("requests", 1)):
                row[k] = int(row.get(k, 0)) + v
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a crash never leaves half a ledger
