"""Analysts: read-only Cypher on the caller's tenant view, the ontology, entities and the graph schema.

Tenant isolation for Cypher: the query never runs on the shared graph. It runs read-only (FalkorDB
GRAPH.RO_QUERY, after graph/cypher_guard.py refused write clauses, LOAD CSV, non-read procedures and text too
long or too deeply nested for the engine's parser) on a copy of the graph holding only the caller's tenant
(graph/falkordb_views.py), with a timeout and a row cap. So `MATCH (n) RETURN count(n)` counts the caller's
nodes only, whatever the query says.
"""
from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request

from dataclasses import asdict

from ...errors import CypherQueryError, CypherRefusedError, CypherTimeout, GraphStoreError, NotFoundError
from ...graph import cypher_guard
from ..auth import Analyst, Reader
from ..errors import ApiError
from ..keys import Principal
from ..schemas import CypherRequest, CypherResponse, PathId
from ..state import audit, get_state

router = APIRouter(tags=["analysts"])


@router.post("/v1/cypher", response_model=CypherResponse)
def cypher(req: CypherRequest, request: Request, p: Principal = Analyst):
    """Run read-only Cypher over this tenant's graph; rows as JSON. Write clauses are refused (400)."""
    st = get_state(request)
    views = getattr(st.services, "cypher_views", None)
    try:
        cypher_guard.check(req.query, max_chars=st.settings.cypher_max_chars, max_depth=st.settings.cypher_max_depth)
    except CypherRefusedError as e:  # answered 400 with e.kind by the error handler
        audit(request, p, "cypher", "refused", target=req.query[:500], status=400, detail={"reason": e.kind})
        raise
    if views is None:
        raise ApiError(501, "analyst Cypher needs the FalkorDB graph backend", "not_implemented")
    timeout = min(req.timeout_ms or st.settings.cypher_timeout_ms, st.settings.cypher_timeout_ms)
    cap = min(req.max_rows or st.settings.cypher_max_rows, st.settings.cypher_max_rows)
    t = time.perf_counter()
    try:
        cols, rows, truncated = views.run(req.query, req.params, p.tenant, timeout, cap)
    except CypherQueryError as e:  # the query's fault: 400, or 408 past its timeout
        status = 408 if isinstance(e, CypherTimeout) else 400
        audit(request, p, "cypher", "error", target=req.query[:500], status=status, detail={"error": str(e)[:300]})
        raise ApiError(status, f"Cypher {'timed out' if status == 408 else 'failed'}: {e}",
                       "timeout" if status == 408 else "bad_query") from e
    except GraphStoreError as e:  # the engine's (a view it could not build, no answer in time): 503
        audit(request, p, "cypher", "error", target=req.query[:500], status=503, detail={"error": str(e)[:300]})
        raise
    ms = round((time.perf_counter() - t) * 1000, 3)
    audit(request, p, "cypher", "ok", target=req.query[:500], detail={"rows": len(rows), "truncated": truncated})
    return {"columns": cols, "rows": rows, "row_count": len(rows), "truncated": truncated, "elapsed_ms": ms,
            "tenant": p.tenant}


@router.get("/v1/ontology")
def ontology(request: Request, p: Principal = Reader) -> dict:
    """The OWL ontology the graph is typed by: classes, object and datatype properties, individuals."""
    ont = get_state(request).services.ontology
    return ont.model_dump(mode="json")


@router.get("/v1/entities/{entity_id}")
def entity(entity_id: PathId, request: Request, limit: int = Query(50, ge=1, le=500), p: Principal = Reader) -> dict:
    """An entity of this tenant with its neighbourhood: related entities (typed edges and co-occurrence) and the
    chunks that mention it."""
    graph = get_state(request).services.graph
    row = graph.entity(entity_id, p.tenant)
    if row is None:
        raise NotFoundError(f"no entity {entity_id!r} (entity ids appear in /v1/query seeds and /v1/documents/{{id}})")
    return {**asdict(row), "neighbours": [asdict(n) for n in graph.entity_neighbours(entity_id, p.tenant, limit)],
            "mentions": [asdict(m) for m in graph.entity_mentions(entity_id, p.tenant, limit)]}


@router.get("/v1/graph/schema")
def graph_schema(request: Request, p: Principal = Reader) -> dict:
    """Node labels and relationship types in this tenant's graph, with counts."""
    labels, rels = get_state(request).services.graph.schema_counts(p.tenant)
    return {"tenant": p.tenant, "labels": labels, "relationship_types": rels}
