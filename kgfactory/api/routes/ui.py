"""The analysts' explorer (/ui, `/` redirects there) and the API docs (/docs, /redoc), all from files shipped in
the package (kgfactory/ui/; the front-end libraries vendored by scripts/vendor_assets.sh): no CDN, no Node.js.

The pages need no key (the key is typed into the page, kept in the tab's sessionStorage and sent on each API
call). They are sent with a strict Content-Security-Policy: scripts, styles, fonts and connections from this
origin only, no inline script, no framing. ReDoc's styled-components inject <style> elements, so its page alone
allows inline styles.
"""
from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
STATIC_PREFIX = "/ui/static"

_BASE_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
             "font-src 'self' data:; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'")
CSP = _BASE_CSP + "; style-src 'self'"
CSP_REDOC = _BASE_CSP + "; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=8)
def _template(name: str) -> str:
    return (UI_DIR / name).read_text(encoding="utf-8")


def _page(request: Request, name: str, csp: str = CSP) -> HTMLResponse:
    """A page template with `{{root}}` (the app's root path, so it works behind a path prefix) filled in."""
    root = html.escape(request.scope.get("root_path", "").rstrip("/"), quote=True)
    body = _template(name).replace("{{root}}", root).replace("{{openapi}}", root + request.app.openapi_url)
    return HTMLResponse(body, headers={"Content-Security-Policy": csp, **SECURITY_HEADERS})


@router.api_route("/", methods=["GET", "HEAD"])
def root(request: Request) -> RedirectResponse:
    """The explorer is the home page."""
    return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/ui", status_code=307)


@router.api_route("/graph", methods=["GET", "HEAD"])
def graph(request: Request) -> RedirectResponse:
    """The graph is explored from the entity search."""
    return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/ui#/entities", status_code=307)


@router.api_route("/ui", methods=["GET", "HEAD"])
@router.api_route("/ui/", methods=["GET", "HEAD"])
def explorer(request: Request) -> HTMLResponse:
    """The explorer's single page; its views are ES modules under /ui/static/js, chosen by the URL fragment."""
    return _page(request, "index.html")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json, from the vendored swagger-ui-dist."""
    return _page(request, "docs.html")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json, from the vendored redoc standalone bundle."""
    return _page(request, "redoc.html", CSP_REDOC)


def static_files() -> StaticFiles:
    """The explorer's scripts, styles and vendored libraries, mounted at STATIC_PREFIX."""
    return StaticFiles(directory=UI_DIR / "static", check_dir=True)
