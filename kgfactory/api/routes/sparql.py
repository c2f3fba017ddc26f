"""GET|POST /sparql: the SPARQL 1.1 Protocol (query operation only) over the caller's tenant's named graph.

Query by GET `?query=`, by urlencoded POST (`query=`), or by POST with `Content-Type: application/sparql-query`.
Results by content negotiation (Accept, or a `format` parameter as SPARQLWrapper sends): SPARQL JSON, XML,
CSV and TSV for SELECT/ASK; Turtle and N-Triples for CONSTRUCT/DESCRIBE. Updates are refused (400): the
endpoint is read-only. The dataset is fixed to the caller's tenant graph, so `default-graph-uri` and
`named-graph-uri` are refused rather than silently ignored.
"""
from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...service.knowledge import KnowledgeService
from ..deps import AnalystKB, audited
from ..errors import ApiError

router = APIRouter(tags=["analysts"])

# media type -> serialize() format name
RESULT_TYPES = {"application/sparql-results+json": "json", "application/json": "json",
                "application/sparql-results+xml": "xml", "application/xml": "xml", "text/xml": "xml",
                "text/csv": "csv", "text/tab-separated-values": "tsv"}
GRAPH_TYPES = {"text/turtle": "turtle", "application/x-turtle": "turtle", "application/n-triples": "ntriples",
               "text/plain": "ntriples"}
FORMAT_PARAM = {"json": "json", "xml": "xml", "csv": "csv", "tsv": "tsv", "turtle": "turtle", "ttl": "turtle",
                "n3": "turtle", "nt": "ntriples", "ntriples": "ntriples"}


def _accepts(header: str) -> list[tuple[str, float]]:
    out = []
    for part in (header or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        out.append((bits[0].lower(), q))
    return sorted(out, key=lambda t: -t[1])


def choose_format(kind: str, accept: str, fmt_param: str | None) -> str:
    graph_kind = kind in ("construct", "describe")
    table = GRAPH_TYPES if graph_kind else RESULT_TYPES
    if fmt_param:
        fmt = FORMAT_PARAM.get(fmt_param.lower()) or table.get(fmt_param.lower())
        if fmt is not None and fmt in table.values():
            return fmt
        # SPARQLWrapper always sends format=json/xml; for a graph result fall through to Accept
    for media, q in _accepts(accept):
        if q <= 0:
            continue
        if media in table:
            return table[media]
        if media in ("*/*", "application/*", "text/*"):
            return "turtle" if graph_kind else "json"
    if not accept:
        return "turtle" if graph_kind else "json"
    raise ApiError(406, f"cannot give a {kind.upper()} result as {accept!r}; acceptable: {', '.join(table)}",
                   "not_acceptable")


async def _params(request: Request) -> tuple[str | None, dict[str, list[str]]]:
    params = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = (await request.body()).decode("utf-8", errors="replace")
        if ctype == "application/x-www-form-urlencoded":
            for k, v in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
        elif ctype == "application/sparql-query":
            return body, params
        elif ctype == "application/sparql-update":
            raise ApiError(400, "SPARQL Update is not allowed: this endpoint is read-only", "update_refused")
        else:
            raise ApiError(415, f"POST /sparql takes application/x-www-form-urlencoded or application/sparql-query, "
                                f"not {ctype or 'no content type'!r}", "unsupported_media_type")
    if "update" in params:
        raise ApiError(400, "SPARQL Update is not allowed: this endpoint is read-only", "update_refused")
    q = params.get("query") or []
    if len(q) > 1:
        raise ApiError(400, "give exactly one `query` parameter")
    return (q[0] if q else None), params


async def _sparql(request: Request, kb: KnowledgeService) -> Response:
    query, params = await _params(request)
    if not query or not query.strip():
        raise ApiError(400, "no SPARQL query: pass `query` (GET parameter or urlencoded POST) or POST "
                            "application/sparql-query")
    if params.get("default-graph-uri") or params.get("named-graph-uri"):
        raise ApiError(400, "default-graph-uri/named-graph-uri are not accepted: the dataset is your tenant's graph")
    from fastapi.concurrency import run_in_threadpool

    with audited(request, "sparql", query[:500]) as a:
        result = await run_in_threadpool(kb.sparql_query, query)
        fmt = choose_format(result.kind, request.headers.get("accept", ""), next(iter(params.get("format") or []), None))
        content, media = result.serialize(fmt)
        a.detail(kind=result.kind, format=fmt)
    return Response(content, media_type=media)


@router.get("/sparql", responses={200: {"content": {m: {} for m in [*RESULT_TYPES, *GRAPH_TYPES]}}})
async def sparql_get(request: Request, kb: AnalystKB, query: str | None = None) -> Response:
    """SPARQL 1.1 Protocol query via GET (`?query=`)."""
    return await _sparql(request, kb)


@router.post("/sparql", responses={200: {"content": {m: {} for m in [*RESULT_TYPES, *GRAPH_TYPES]}}})
async def sparql_post(request: Request, kb: AnalystKB) -> Response:
    """SPARQL 1.1 Protocol query via POST: urlencoded `query=` or an application/sparql-query body."""
    return await _sparql(request, kb)
