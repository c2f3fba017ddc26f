"""The SDK's error tree, mirroring the API's error JSON `{"error": {type, message, request_id}}` by status.

Each error also derives from the matching kgfactory.errors class where there is one, so
`except kgfactory.errors.NotFoundError` catches a 404 from a server and a missing id in-process alike.
"""
from __future__ import annotations

from typing import Any

from .. import errors as core


class KGFactoryError(core.KGFError):
    """Root of the SDK's errors."""


class TransportError(KGFactoryError):
    """The server could not be reached or did not answer in time (after the retries of idempotent calls)."""


class TimeoutError(TransportError):  # noqa: A001 - the SDK's own, under TransportError
    """No answer within the client's timeout."""


class APIError(KGFactoryError):
    """The server answered with an error. `status`, `type` (the API's error kind), `message`, `request_id`."""

    status: int = 0

    def __init__(self, message: str, *, status: int = 0, type: str = "", request_id: str | None = None,
                 body: Any = None, retry_after: float | None = None):
        self.status = status or self.status
        self.type = type
        self.message = message
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        rid = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{self.status} {type}: {message}{rid}" if self.status else message)


class AuthenticationError(APIError):
    """401: no API key, or the key is unknown or revoked."""

    status = 401


class PermissionDeniedError(AuthenticationError):
    """403: the key's roles do not allow this call."""

    status = 403


class NotFoundError(APIError, core.NotFoundError):
    """404: no such document, job, entity or route (another tenant's ids answer 404 too)."""

    status = 404


class ValidationError(APIError):
    """400/406/413/415/422: the request was refused as it stands; the message says what to fix."""

    status = 422


class RateLimitError(APIError):
    """429: the key's rate limit (or its tenant's LLM token budget) is spent; `retry_after` in seconds."""

    status = 429


class ServerError(APIError):
    """5xx: the server or one of its stores or models failed."""

    status = 500


class NotAvailableError(ServerError):
    """501: the server's build does not offer this (e.g. SPARQL without the RDF layer)."""

    status = 501


def error_for(status: int, body: Any, headers: dict[str, str] | None = None) -> APIError:
    """The APIError subclass for an HTTP error status and the API's error body."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message, kind, rid = str(err.get("message", "")), str(err.get("type", "")), err.get("request_id")
    else:
        message, kind, rid = (str(body)[:500] if body else f"HTTP {status}"), "", None
    retry_after = None
    ra = (headers or {}).get("retry-after")
    if ra:
        try:
            retry_after = float(ra)
        except ValueError:
            pass
    cls: type[APIError]
    if status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status == 429:
        cls = RateLimitError
    elif status == 501:
        cls = NotAvailableError
    elif status >= 500:
        cls = ServerError
    elif 400 <= status < 500:
        cls = ValidationError
    else:
        cls = APIError
    return cls(message, status=status, type=kind, request_id=rid, body=body, retry_after=retry_after)
