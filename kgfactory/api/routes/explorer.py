"""The explorer's reads (the browser UI's entity search, entity page, neighbourhood graph, ontology tree and
quarantine list), each a thin shell over the application layer (service/explorer.py), inside the caller's
tenant. Bounds are checked by the layer, so a bad value is a 400 naming the field, as from the SDK and the CLI;
the schema states them."""
from __future__ import annotations

from fastapi import APIRouter, Query

from ...service import limits as L
from ...service.results import EntityGraph, EntitySearchResult, OntologyClasses, QuarantineList
from ..deps import ReaderKB
from ..schemas import PathId

router = APIRouter(tags=["explorer"])


def _bounds(low: int, high: int) -> dict:
    return {"minimum": low, "maximum": high}


@router.get("/v1/entities", response_model=EntitySearchResult)
def entity_search(kb: ReaderKB,
                  q: str = Query(..., description="Part of an entity name or alias (1-200 characters): exact "
                                 "matches, then prefixes, then near spellings; case and accents do not matter.",
                                 json_schema_extra={"minLength": 1, "maxLength": L.MAX_ENTITY_QUERY_CHARS}),
                  limit: int = Query(L.ENTITY_SEARCH_DEFAULT, description="At most this many entities.",
                                     json_schema_extra=_bounds(1, L.ENTITY_SEARCH_MAX)),
                  label: str | None = Query(None, description="Only entities of this ontology class or a subclass.",
                                            json_schema_extra={"maxLength": L.MAX_ID_CHARS})) -> EntitySearchResult:
    """Entity type-ahead over this tenant's entities."""
    return kb.entity_search(q, limit=limit, label=label)


@router.get("/v1/entities/{entity_id}/graph", response_model=EntityGraph)
def entity_graph(entity_id: PathId, kb: ReaderKB,
                 depth: int = Query(1, description="Steps from the entity: 1 or 2.", json_schema_extra=_bounds(1, 2)),
                 limit: int = Query(L.GRAPH_NODES_DEFAULT, description="At most this many nodes.",
                                    json_schema_extra=_bounds(1, L.GRAPH_NODES_MAX)),
                 types: str | None = Query(None, description="Comma-separated relation types (ontology object "
                                           "properties, or CO_OCCURS) to keep.", json_schema_extra={"maxLength": 5000}),
                 classes: str | None = Query(None, description="Comma-separated ontology classes whose entities "
                                             "to keep (subclasses included).",
                                             json_schema_extra={"maxLength": 5000})) -> EntityGraph:
    """The entity's neighbourhood as nodes and edges, for drawing; expand a node by asking for its own."""
    return kb.entity_graph(entity_id, depth=depth, limit=limit, types=types, classes=classes)


@router.get("/v1/ontology/classes", response_model=OntologyClasses)
def ontology_classes(kb: ReaderKB) -> OntologyClasses:
    """The class tree with this tenant's instance counts, and the properties with domain and range."""
    return kb.ontology_classes()


@router.get("/v1/ontology/quarantine", response_model=QuarantineList)
def quarantine(kb: ReaderKB, limit: int = Query(L.QUARANTINE_DEFAULT, description="At most this many rows.",
                                                json_schema_extra=_bounds(1, L.QUARANTINE_MAX))) -> QuarantineList:
    """Facts the ontology refused for this tenant (not in the graph), oldest first, with their total."""
    return kb.quarantine(limit=limit)
