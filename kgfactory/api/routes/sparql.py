"""GET|POST /sparql: the SPARQL 1.1 Protocol (query operation only) over the caller's tenant's named graph.

Query by GET `?query=`, by urlencoded POST (`query=`), or by POST with `Content-Type: application/sparql-query`.
GET with no query answers the SPARQL Service Description (an RDF graph, negotiated like a CONSTRUCT result).
Results by content negotiation (Accept with q-values and wildcards, or a `format`/`output`/`results` parameter
as SPARQLWrapper sends): SPARQL JSON, XML, CSV and TSV for SELECT/ASK; Turtle, N-Triples, N-Quads, RDF/XML and
JSON-LD for CONSTRUCT/DESCRIBE; anything else is 406 naming what is offered. Updates are refused (400): the
endpoint is read-only. `default-graph-uri` / `named-graph-uri` choose the dataset among the caller's tenant
graph and the ontology graph; naming any other graph is a 400 (ontology/rdf_view.py). Besides Bearer and
X-API-Key, HTTP Basic with the API key as password is accepted here (api/auth.py), as many SPARQL tools send.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...ontology.sparql import MEDIA
from ...ontology.sparql_description import service_description
from ...service.knowledge import KnowledgeService
from ..deps import AnalystKB, audited
from ..errors import ApiError

router = APIRouter(tags=["analysts"])

# offered media types, in the server's order of preference -> serialize() format name
RESULT_TYPES = {"application/sparql-results+json": "json", "application/json": "json",
                "application/sparql-results+xml": "xml", "application/xml": "xml", "text/xml": "xml",
                "text/csv": "csv", "text/tab-separated-values": "tsv"}
GRAPH_TYPES = {"text/turtle": "turtle", "application/x-turtle": "turtle", "application/turtle": "turtle",
               "application/n-triples": "ntriples", "text/plain": "ntriples", "application/n-quads": "nquads",
               "application/rdf+xml": "rdfxml", "application/xml": "rdfxml", "text/xml": "rdfxml",
               "application/ld+json": "jsonld", "application/x-json+ld": "jsonld", "application/json": "jsonld"}
# `format` parameter short names (what SPARQLWrapper, Virtuoso-style clients send), per result kind
RESULT_NAMES = {"json": "json", "xml": "xml", "csv": "csv", "tsv": "tsv"}
GRAPH_NAMES = {"turtle": "turtle", "ttl": "turtle", "n3": "turtle", "nt": "ntriples", "ntriples": "ntriples",
               "n-triples": "ntriples", "nq": "nquads", "nquads": "nquads", "n-quads": "nquads", "xml": "rdfxml",
               "rdf": "rdfxml", "rdfxml": "rdfxml", "rdf+xml": "rdfxml", "json": "jsonld", "jsonld": "jsonld",
               "json-ld": "jsonld"}
FORMAT_PARAMS = ("format", "output", "results")
MAX_GRAPH_URIS = 16


def _accepts(header: str) -> list[tuple[str, float]]:
    """(media range, q) of an Accept header, in the order given."""
    out = []
    for part in (header or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        q = 1.0
        for b in bits[1:]:
            if b.replace(" ", "").lower().startswith("q="):
                try:
                    q = min(max(float(b.split("=", 1)[1]), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((bits[0].lower(), q))
    return out


def _quality(media: str, ranges: list[tuple[str, float]], wildcards: bool = True) -> float:
    """The q the most specific matching range gives `media` (RFC 9110 12.5.1); 0 when none matches. Aliases
    (wildcards=False) match exact ranges only, so `*/*` gets the canonical media type that is then sent."""
    best, rank = 0.0, -1
    major = media.split("/")[0]
    for rng, q in ranges:
        r = 2 if rng == media else -1
        if wildcards and r < 0:
            r = 1 if rng == f"{major}/*" else 0 if rng == "*/*" else -1
        if r > rank:
            best, rank = q, r
    return best if rank >= 0 else 0.0


def choose_format(kind: str, accept: str, fmt_params: list[str] | None = None) -> str:
    """The serialize() format for a `kind` result: a recognised `format` parameter value first, else the offered
    media type the Accept header rates highest (ties: the server's order), else 406 naming what is offered."""
    graph_kind = kind in ("construct", "describe")
    table, names = (GRAPH_TYPES, GRAPH_NAMES) if graph_kind else (RESULT_TYPES, RESULT_NAMES)
    for value in fmt_params or []:
        fmt = names.get(value.strip().lower()) or table.get(value.split(";")[0].strip().lower())
        if fmt is not None:
            return fmt
    if not accept.strip():
        return next(iter(table.values()))
    ranges = _accepts(accept)
    best, best_q = None, 0.0
    for media, fmt in table.items():
        q = _quality(media, ranges, wildcards=MEDIA[fmt] == media)
        if q > best_q:
            best, best_q = fmt, q
    if best is None:
        offered = ", ".join(dict.fromkeys(table))
        raise ApiError(406, f"cannot give a {kind.upper()} result as {accept[:200]!r}; offered: {offered}",
                       "not_acceptable")
    return best


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
    fmt_params = [v for k in FORMAT_PARAMS for v in params.get(k) or []]
    accept = request.headers.get("accept", "")
    if query is None and request.method == "GET":  # SPARQL 1.1 Service Description
        result = service_description(str(request.url.replace(query="")), kb.tenant)
        fmt = choose_format(result.kind, accept, fmt_params)
        content, media = result.serialize(fmt)
        return Response(content, media_type=media)
    if not query or not query.strip():
        raise ApiError(400, "no SPARQL query: pass `query` (GET parameter or urlencoded POST) or POST "
                            "application/sparql-query")
    graphs = {k: params.get(k) or [] for k in ("default-graph-uri", "named-graph-uri")}
    if any(len(v) > MAX_GRAPH_URIS for v in graphs.values()):
        raise ApiError(400, f"name at most {MAX_GRAPH_URIS} graphs in default-graph-uri / named-graph-uri")
    from fastapi.concurrency import run_in_threadpool

    with audited(request, "sparql", query[:500]) as a:
        result = await run_in_threadpool(kb.sparql_query, query, default_graph_uris=graphs["default-graph-uri"],
                                         named_graph_uris=graphs["named-graph-uri"])
        fmt = choose_format(result.kind, accept, fmt_params)
        content, media = result.serialize(fmt)
        a.detail(kind=result.kind, format=fmt)
    return Response(content, media_type=media)


_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {m: {} for m in dict.fromkeys([*RESULT_TYPES, *GRAPH_TYPES])}}}


@router.get("/sparql", responses=_CONTENT)
async def sparql_get(request: Request, kb: AnalystKB, query: str | None = None) -> Response:
    """SPARQL 1.1 Protocol query via GET (`?query=`); without a query, the SPARQL Service Description."""
    return await _sparql(request, kb)


@router.post("/sparql", responses=_CONTENT)
async def sparql_post(request: Request, kb: AnalystKB) -> Response:
    """SPARQL 1.1 Protocol query via POST: urlencoded `query=` or an application/sparql-query body."""
    return await _sparql(request, kb)
