"""Request ids, access logs, per-route metrics, and request size limits (checked before a body is read)."""
from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kgfactory.api.access")


class _TooLarge(StarletteHTTPException):
    """Raised from receive(): FastAPI passes HTTPExceptions through, so the app's handler answers 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is over the {limit} byte limit "
                              "(KGF_API_MAX_JSON_BYTES for JSON, KGF_API_MAX_BODY_BYTES for uploads)")


async def _reply(send: Send, status: int, kind: str, message: str, rid: str) -> None:
    body = json.dumps({"error": {"type": kind, "message": message, "request_id": rid}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-request-id", rid.encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestContext:
    """Pure ASGI (so streaming responses stream): assigns X-Request-ID, enforces body limits, logs, measures."""

    def __init__(self, app: ASGIApp, metrics, max_body: int, max_json: int):
        self.app, self.metrics, self.max_body, self.max_json = app, metrics, max_body, max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        ctype = headers.get("content-type", "")
        limit = self.max_json if "json" in ctype or "urlencoded" in ctype or "sparql" in ctype else self.max_body
        t0 = time.perf_counter()
        status_holder = {"status": 500}
        route = scope["path"]

        def finish() -> None:
            r = scope.get("route")
            name = getattr(r, "path", None) or ("unmatched" if status_holder["status"] == 404 else route)
            secs = time.perf_counter() - t0
            st = status_holder["status"]
            self.metrics.requests.labels(scope["method"], name, str(st)).observe(secs)
            if st >= 400:
                kind = scope.get("state", {}).get("error_kind", "http")
                self.metrics.errors.labels(name, str(st), kind).inc()
            log.info(json.dumps({"request_id": rid, "method": scope["method"], "path": scope["path"], "route": name,
                                 "status": st, "ms": round(secs * 1000, 2),
                                 "tenant": getattr(scope.get("state", {}).get("principal"), "tenant", None)}))

        cl = headers.get("content-length")
        if cl is not None and cl.isdigit() and int(cl) > limit:
            status_holder["status"] = 413
            await _reply(send, 413, "too_large", f"request body of {cl} bytes is over the {limit} byte limit "
                                                 "(KGF_API_MAX_JSON_BYTES / KGF_API_MAX_BODY_BYTES)", rid)
            return finish()
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return msg

        async def send_wrapper(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                status_holder["status"] = msg["status"]
                msg.setdefault("headers", [])
                msg["headers"] = list(msg["headers"]) + [(b"x-request-id", rid.encode())]
            await send(msg)

        try:
            await self.app(scope, counted_receive, send_wrapper)
        except _TooLarge:
            if not started:
                status_holder["status"] = 413
                await _reply(send, 413, "too_large", f"request body is over the {limit} byte limit", rid)
        finally:
            finish()
