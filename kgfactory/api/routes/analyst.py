"""Analysts: read-only Cypher on the caller's tenant view, the ontology, entities and the graph schema.

Tenant isolation for Cypher lives in the application layer (service/analyst.py): the query never runs on the
shared graph, only read-only on a copy holding the caller's tenant, with a timeout and a row cap.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from ...service.limits import ENTITY_NEIGHBOURS_DEFAULT, ENTITY_NEIGHBOURS_MAX
from ...service.results import CypherResult, EntityDetail, GraphSchema
from ..deps import AnalystKB, ReaderKB, audited
from ..schemas import CypherRequest, PathId

router = APIRouter(tags=["analysts"])


@router.post("/v1/cypher", response_model=CypherResult)
def cypher(req: CypherRequest, request: Request, kb: AnalystKB) -> CypherResult:
    """Run read-only Cypher over this tenant's graph; rows as JSON. Write clauses are refused (400)."""
    with audited(request, "cypher", req.query[:500]) as a:
        res = kb.cypher(req.query, req.params, timeout_ms=req.timeout_ms, max_rows=req.max_rows)
        a.detail(rows=res.row_count, truncated=res.truncated)
    return res


@router.get("/v1/ontology")
def ontology(kb: ReaderKB) -> dict[str, Any]:
    """The OWL ontology the graph is typed by: classes, object and datatype properties, individuals."""
    return kb.ontology()


@router.get("/v1/entities/{entity_id}", response_model=EntityDetail)
def entity(entity_id: PathId, kb: ReaderKB,
           limit: int = Query(ENTITY_NEIGHBOURS_DEFAULT, ge=1, le=ENTITY_NEIGHBOURS_MAX)) -> EntityDetail:
    """An entity of this tenant with its neighbourhood: related entities (typed edges and co-occurrence) and the
    chunks that mention it."""
    return kb.entity(entity_id, limit=limit)


@router.get("/v1/graph/schema", response_model=GraphSchema)
def graph_schema(kb: ReaderKB) -> GraphSchema:
    """Node labels and relationship types in this tenant's graph, with counts."""
    return kb.graph_schema()
