"""Who is calling: `Authorization: Bearer <key>` (what the openai client sends) or `X-API-Key: <key>`; on the
SPARQL endpoint also `Authorization: Basic` with the key as the password and any user name (many SPARQL tools,
rdflib's SPARQLStore and SPARQLWrapper's setCredentials among them, send only Basic). Its 401s then challenge
for Basic too, so such a tool (or a browser) knows to send credentials.

Open mode (KGF_API_OPEN=true, for local use) skips keys: every caller is an admin of KGF_TENANT, whatever key
it sends (clients such as `openai` always send one).
Refusals are audited and say what to fix; a refused request never reaches a store.
"""
from __future__ import annotations

import base64
import binascii
from typing import Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError
from .keys import ROLES, Principal
from .state import audit, get_state

_bearer = HTTPBearer(auto_error=False, description="API key from `kgf keys create`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key from `kgf keys create`")

BASIC_PATHS = ("/sparql",)  # where HTTP Basic (API key as password) is accepted
BASIC_REALM = 'Basic realm="kgfactory SPARQL", charset="UTF-8"'
PERMISSION_ROLES = {"read": "reader", "analyse": "analyst", "ingest": "ingester", "admin": "admin"}


def current_principal(request: Request, bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
                      header: str | None = Depends(_header)) -> Principal:
    st = get_state(request)
    key = header or (bearer.credentials if bearer else None)
    basic_ok = request.url.path.endswith(BASIC_PATHS)  # (behind a path prefix too)
    challenge = f"{BASIC_REALM}, Bearer" if basic_ok else "Bearer"
    basic = basic_password(request.headers.get("authorization", "")) if key is None and basic_ok else None
    if basic is not None:
        key = basic
    p: Principal | None
    if st.settings.api_open:  # no keys are checked, so a key sent anyway (the openai client always sends one) is ignored
        p = Principal(key_id="open", name="open-mode", tenant=st.settings.tenant, roles=frozenset(ROLES))
    else:
        if not key and basic is None:
            raise ApiError(401, "no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
                                + (" (or HTTP Basic with the key as password)" if basic_ok else "")
                                + " (create one with `kgf keys create`)", "unauthenticated",
                           headers={"WWW-Authenticate": challenge})
        p = st.keys.verify(key or "")
        if p is None:
            audit(request, None, "auth", "denied", target=request.url.path, status=401,
                  detail={"reason": "unknown or revoked key"})
            raise ApiError(401, "API key is unknown or revoked", "unauthenticated",
                           headers={"WWW-Authenticate": challenge})
    wait = st.limiter.allow(p.key_id)
    if wait > 0:
        raise ApiError(429, f"rate limit of {st.settings.api_rate_limit_per_minute} requests per minute reached; "
                            f"retry in {wait:.1f} s", "rate_limited", headers={"Retry-After": str(int(wait) + 1)})
    request.state.principal = p
    return p


def basic_password(authorization: str) -> str | None:
    """The password of an `Authorization: Basic` header (the user name is ignored); "" when the header is Basic
    but malformed (so it is refused as a wrong key, not as a missing one); None when it is not Basic."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ""
    return decoded.partition(":")[2]


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
