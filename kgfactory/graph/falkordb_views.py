"""Tenant-restricted views for analysts' Cypher on FalkorDB.

Every tenant shares one property graph (a `tenant` property on Document, Chunk and Entity). Rewriting or
filtering an analyst's arbitrary Cypher cannot keep tenant A out of tenant B's data (aggregates,
`MATCH (n)`, path functions all see everything), so analyst Cypher never runs on the shared graph. It runs,
read-only, on a copy holding only the caller's nodes: GRAPH.COPY of the shared graph, then a delete of
every node whose tenant differs (bookkeeping nodes without a tenant, such as IngestRun, go too; the
revision counter stays so the view knows what it was copied from). A view is rebuilt when the shared
graph's revision has moved since it was copied, so it is never staler than the last completed write.

What a view still shares with the full graph: FalkorDB's schema catalogue (label, relationship-type and
property-key names, which come from the ontology and the ingest code, not from tenant data).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from ..errors import GraphStoreError
from . import cypher as Q

log = logging.getLogger(__name__)


class FalkorDBTenantViews:
    """run(cypher, params, tenant, timeout_ms, max_rows) on the tenant's view, read-only."""

    def __init__(self, store, graph_name: str):
        self.store = store
        self.graph_name = graph_name
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def view_name(self, tenant: str) -> str:
        return f"{self.graph_name}__tenant_view__{Q.check_name(_safe(tenant))}"

    def _lock(self, tenant: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant, threading.Lock())

    def _view(self, tenant: str):
        db = self.store._db
        name = self.view_name(tenant)
        rev = self.store.revision()
        with self._lock(tenant):
            view = db.select_graph(name)
            try:
                if name in db.list_graphs():
                    got = view.ro_query(Q.GET_REVISION).result_set
                    if got and int(got[0][0] or 0) == rev:
                        return view
                    view.delete()
                if self.graph_name not in db.list_graphs():
                    return None  # nothing written yet: an empty graph
                view = self.store._g.copy(name)
                view.query(Q.DROP_OTHER_TENANTS, {"tenant": tenant})
                log.info("built Cypher view %s at revision %s", name, rev)
                return view
            except Exception as e:
                raise GraphStoreError(f"could not build the tenant view for {tenant!r}: {e}") from e

    def run(self, cypher: str, params: dict[str, Any] | None, tenant: str, timeout_ms: int,
            max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
        """(columns, rows, truncated). Raises GraphStoreError (timeouts say so)."""
        if Q.is_write(cypher):
            raise GraphStoreError("write clauses are not allowed in a read-only query")
        view = self._view(tenant)
        if view is None:
            return [], [], False
        try:
            res = view.ro_query(cypher, params or {}, timeout=int(timeout_ms))
        except Exception as e:
            msg = str(e)
            if "timed out" in msg.lower():
                raise GraphStoreError(f"query timed out after {timeout_ms} ms") from e
            raise GraphStoreError(f"query failed: {msg}") from e
        from .falkordb_store import _plain

        cols = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        rows = res.result_set or []
        truncated = len(rows) > max_rows
        return cols, [[_plain(v) for v in row] for row in rows[:max_rows]], truncated

    def drop(self, tenant: str) -> None:
        try:
            db = self.store._db
            if self.view_name(tenant) in db.list_graphs():
                db.select_graph(self.view_name(tenant)).delete()
        except Exception as e:
            log.debug("dropping view: %s", e)


def _safe(tenant: str) -> str:
    """Graph names come from tenant ids: keep them identifier-like (tenants are validated upstream)."""
    import hashlib
    import re

    if re.fullmatch(r"[A-Za-z0-9_]{1,48}", tenant):
        return "t_" + tenant
    return "h_" + hashlib.sha256(tenant.encode()).hexdigest()[:16]
