"""API keys: hashed at rest (SQLite under the data dir), each mapping to one tenant and a set of roles (or, for
analyst keys only, to all tenants: tenant `*`, see check_scope).

A key looks like `kgf_<id>_<secret>`. Only sha256(key) is stored: keys are 192-bit random, so a plain
hash is enough (no slow KDF needed) and a stolen key file reveals no usable key. The id part lets a key be
listed and revoked without showing it again.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError
from ..types import ALL_TENANTS

ROLES = ("reader", "analyst", "ingester", "admin")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# what each role may do; admin may do everything
GRANTS = {
    "reader": {"read"},
    "analyst": {"read", "analyse"},
    "ingester": {"read", "ingest"},
    "admin": {"read", "analyse", "ingest", "admin"},
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, its tenant and roles."""

    key_id: str
    name: str
    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: str) -> bool:
        return any(permission in GRANTS.get(r, ()) for r in self.roles)


def check_tenant(tenant: str) -> str:
    if not TENANT_RE.match(tenant or ""):
        raise ConfigError(f"tenant {tenant!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'"
                          f" (or {ALL_TENANTS!r} for an analyst key over every tenant)")
    return tenant


def check_scope(tenant: str, roles: list[str]) -> None:
    """A key over all tenants (tenant `*`) may only analyse: it exists for analyst Cypher on Neo4j Community
    Edition, where a query cannot be confined to one tenant. Keys are made by `kgf keys create`, which needs the
    data directory (an operator), never through the API, so no tenant's admin can mint one."""
    if tenant == ALL_TENANTS:
        if set(roles) != {"analyst"}:
            raise ConfigError(f"a key for all tenants ({ALL_TENANTS!r}) takes the analyst role only, not {roles!r}")
        return
    check_tenant(tenant)


def check_roles(roles: list[str]) -> list[str]:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ConfigError(f"roles must be some of {', '.join(ROLES)}; got {roles!r}")
    return sorted(set(roles))


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """keys.sqlite in the data dir. Safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("""CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL, roles TEXT NOT NULL,
            hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)""")

    def create(self, name: str, tenant: str, roles: list[str]) -> tuple[str, dict]:
        """Returns (the key, shown once; its record)."""
        roles = check_roles(roles)
        check_scope(tenant, roles)
        kid = secrets.token_hex(6)
        key = f"kgf_{kid}_{secrets.token_urlsafe(24)}"
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("INSERT INTO api_keys VALUES (?,?,?,?,?,?,NULL)",
                             (kid, name, tenant, ",".join(roles), _hash(key), now))
        return key, {"id": kid, "name": name, "tenant": tenant, "roles": roles, "created_at": now, "revoked_at": None}

    def list(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, tenant, roles, created_at, revoked_at FROM api_keys "
                                    "ORDER BY created_at, id").fetchall()
        return [{"id": r[0], "name": r[1], "tenant": r[2], "roles": r[3].split(","), "created_at": r[4],
                 "revoked_at": r[5]} for r in rows]

    def revoke(self, key_id: str) -> bool:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key_id))
        return cur.rowcount > 0

    def verify(self, key: str) -> Principal | None:
        m = re.fullmatch(r"kgf_([0-9a-f]{12})_[A-Za-z0-9_-]{20,64}", key or "")
        if not m:
            return None
        with self._lock:
            row = self._db.execute("SELECT id, name, tenant, roles, hash, revoked_at FROM api_keys WHERE id = ?",
                                   (m.group(1),)).fetchone()
        if row is None or row[5] is not None or not hmac.compare_digest(row[4], _hash(key)):
            return None
        return Principal(key_id=row[0], name=row[1], tenant=row[2], roles=frozenset(row[3].split(",")))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def keystore_path(data_dir: Path, shared: Path | None = None) -> Path:
    """`<data_dir>/api/keys.sqlite`, or KGF_KEY_STORE_PATH: one key store API replicas on one host share."""
    return Path(shared) if shared else Path(data_dir) / "api" / "keys.sqlite"
