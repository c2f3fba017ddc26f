"""The one place that maps errors to HTTP codes. Every error body is {"error": {type, message, request_id}}, plus
`param` (the request field at fault) where the error names one."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors as E
from ..service.status import status_of

log = logging.getLogger(__name__)


class ApiError(E.KGFError):
    """A request the API refuses on its own terms (auth, roles, limits, bad input): status + message."""

    def __init__(self, status: int, message: str, kind: str = "bad_request", headers: dict | None = None,
                 param: str | None = None):
        self.status, self.kind, self.headers, self.param = status, kind, headers, param
        super().__init__(message)


def _status(e: BaseException) -> tuple[int, str]:
    """ApiError carries its own status; every core error goes through the one table (service/status.py)."""
    if isinstance(e, ApiError):
        return e.status, e.kind
    return status_of(e)


def stream_error(e: BaseException) -> dict:
    """An error after a stream's status line went out, as its `error` event: the same type, status and message the
    handlers below would have answered (an unexpected error's own text stays in the server log)."""
    status, kind = _status(e)
    if isinstance(e, (E.KGFError, ApiError)):
        message = str(e)
    else:
        log.error("stream failed: %s", e, exc_info=e)
        message = f"internal error ({type(e).__name__}); see the server log"
    return {"type": kind, "status": status, "message": message}


def error_body(request: Request, status: int, kind: str, message: str, **extra) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    body = {"error": {"type": kind, "message": message, "request_id": rid, **extra}}
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errs = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errs):
        e = next(e for e in errs if e.get("type") == "json_invalid")
        ctx = e.get("ctx") or {}
        return 400, f"malformed JSON body: {ctx.get('error', 'could not parse')} (at character {e['loc'][-1]})"
    if errs and all(e.get("loc", ("",))[0] == "path" for e in errs):
        # an id no store can hold (control characters, overlong): it names nothing, the same as an unknown id
        names = ", ".join(dict.fromkeys(str(e["loc"][-1]) for e in errs))
        return 404, f"no such {names}: {errs[0].get('msg')}"
    parts = []
    for e in errs[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return 422, "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(E.KGFError)
    async def _kgf(request: Request, exc: E.KGFError):
        status, kind = _status(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        request.state.error_kind = kind
        param = getattr(exc, "param", None)  # the request field at fault, where one is (OpenAI clients read it)
        resp = error_body(request, status, kind, str(exc), **({"param": param} if param else {}))
        for k, v in (getattr(exc, "headers", None) or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, msg = _validation_message(exc)
        kind = "not_found" if status == 404 else "invalid_request"
        request.state.error_kind = kind
        return error_body(request, status, kind, msg,
                          details=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()[:20]])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        msg = str(exc.detail)
        if exc.status_code == 404 and msg == "Not Found":
            msg = f"no route {request.method} {request.url.path}; see /docs"
        resp = error_body(request, exc.status_code, kind, msg)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_body(request, 500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")
