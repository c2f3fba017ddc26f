"""Who is calling: `Authorization: Bearer <key>` (what the openai client sends) or `X-API-Key: <key>`.

Open mode (KGF_API_OPEN=true, for local use) skips keys: every caller is an admin of KGF_TENANT, whatever key
it sends (clients such as `openai` always send one).
Refusals are audited and say what to fix; a refused request never reaches a store.
"""
from __future__ import annotations

from typing import Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError
from .keys import ROLES, Principal
from .state import audit, get_state

_bearer = HTTPBearer(auto_error=False, description="API key from `kgf keys create`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key from `kgf keys create`")

PERMISSION_ROLES = {"read": "reader", "analyse": "analyst", "ingest": "ingester", "admin": "admin"}


def current_principal(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
                      header: str | None = Depends(_header)) -> Principal:
    st = get_state(request)
    key = header or (bearer.credentials if bearer else None)
    p: Principal | None
    if st.settings.api_open:  # no keys are checked, so a key sent anyway (the openai client always sends one) is ignored
        p = Principal(key_id="open", name="open-mode", tenant=st.settings.tenant, roles=frozenset(ROLES))
    else:
        if not key:
            raise ApiError(401, "no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                                "(create one with `kgf keys create`)", "unauthenticated",
                           headers={"WWW-Authenticate": "Bearer"})
        p = st.keys.verify(key)
        if p is None:
            audit(request, None, "auth", "denied", target=request.url.path, status=401,
                  detail={"reason": "unknown or revoked key"})
            raise ApiError(401, "API key is unknown or revoked", "unauthenticated", headers={"WWW-Authenticate": "Bearer"})
    wait = st.limiter.allow(p.key_id)
    if wait > 0:
        raise ApiError(429, f"rate limit of {st.settings.api_rate_limit_per_minute} requests per minute reached; "
                            f"retry in {wait:.1f} s", "rate_limited", headers={"Retry-After": str(int(wait) + 1)})
    request.state.principal = p
    return p


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that lets the call through only with a role that grants `permission`."""

    def dep(request: Request, p: Principal = Depends(current_principal)) -> Principal:
        if not p.can(permission):
            audit(request, p, "auth", "denied", target=f"{request.method} {request.url.path}", status=403,
                  detail={"needs": PERMISSION_ROLES[permission], "roles": sorted(p.roles)})
            raise ApiError(403, f"this key (roles: {', '.join(sorted(p.roles))}) may not do this: it needs the "
                                f"{PERMISSION_ROLES[permission]!r} role (or admin)", "forbidden")
        return p

    return dep


Reader = Depends(require("read"))
Analyst = Depends(require("analyse"))
Ingester = Depends(require("ingest"))
Admin = Depends(require("admin"))
