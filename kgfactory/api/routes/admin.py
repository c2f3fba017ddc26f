"""Admin: the audit log of this tenant (who, action, target, time, outcome)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from ..auth import Admin, current_principal
from ..keys import Principal
from ..deps import State

router = APIRouter(tags=["admin"])


@router.get("/v1/audit")
def read_audit(st: State, action: str | None = Query(None, max_length=50, description="e.g. query, ingest, delete, cypher, sparql, chat, auth"),
               limit: int = Query(100, ge=1, le=1000), after: int = Query(0, ge=0, le=2**63 - 1, description="Only entries after this seq."),
               p: Principal = Admin) -> list[dict]:
    """Audit entries of this tenant, newest first."""
    return st.audit.read(tenant=p.tenant, action=action, limit=limit, after=after)


@router.get("/v1/whoami")
def whoami(request: Request, p: Principal = Depends(current_principal)) -> dict:
    """The calling key: its id, name, tenant and roles (the CLI uses it to check --tenant)."""
    return {"key_id": p.key_id, "name": p.name, "tenant": p.tenant, "roles": sorted(p.roles)}
