"""Typed results of the SDK: the application layer's one set (kgfactory/service/results.py), so the API's response
bodies, `Client`, `KnowledgeBase` and `kgf --json` share each shape. Needs only pydantic."""
from ..service.results import (AskResult, Citation, CypherResult, DeleteResult, DocumentDetail, DocumentInfo,
                               EntityDetail, EntityRef, EvidencePath, GraphSchema, IngestProgress, IngestResult, Job,
                               RetrievedChunk, SearchResult, SparqlResult)
from ..service.results import (EntityGraph, EntityHit, EntitySearchResult, OntologyClasses,  # the explorer's
                               QuarantineList)

__all__ = ["AskResult", "SearchResult", "Job", "IngestResult", "IngestProgress", "DocumentInfo", "DocumentDetail",
           "DeleteResult", "CypherResult", "SparqlResult", "EntityDetail", "GraphSchema", "Citation", "RetrievedChunk",
           "EntityRef", "EvidencePath", "EntityHit", "EntitySearchResult", "EntityGraph", "OntologyClasses",
           "QuarantineList"]
