"""The one table from core errors to (HTTP status, error type): the API's error handler answers with it, and the
SDK's in-process `KnowledgeBase` raises the SDK error a server would have caused with it. Light (no imports
beyond kgfactory.errors)."""
from __future__ import annotations

from .. import errors as E

class NotAvailableError(E.KGFError):
    """This build or backend does not offer the operation (analyst Cypher without FalkorDB, SPARQL without the
    RDF layer): HTTP 501."""


# most specific first: the first class an error is an instance of decides
TABLE: tuple[tuple[type[Exception], int, str], ...] = (
    (NotAvailableError, 501, "not_implemented"),
    (E.LLMBudgetError, 429, "llm_budget_spent"),
    (E.LLMUnavailableError, 503, "llm_unavailable"),
    (E.SparqlError, 400, "sparql_error"),
    (E.OntologyError, 400, "bad_ontology"),  # an ontology (or RDF) file that cannot be read or does not fit
    (E.TenantScopeError, 403, "forbidden"),
    (E.CypherTimeout, 408, "timeout"),
    (E.CypherQueryError, 400, "bad_query"),
    (E.NotFoundError, 404, "not_found"),
    (E.RetrievalError, 400, "bad_query"),
    (E.ParseError, 400, "bad_document"),
    (E.ConfigError, 400, "bad_setting"),
    (E.LLMError, 502, "llm_error"),
    (E.InvalidParameterError, 400, "invalid_request"),
    (E.InvalidInputError, 422, "invalid_input"),
    (E.GraphUnavailableError, 503, "graph_unavailable"),
    (E.StoreError, 503, "store_unavailable"),
    (E.EmbeddingMismatchError, 409, "embedding_mismatch"),  # the fix is `kgf reindex` (the message says so)
    (E.EmbeddingError, 503, "model_unavailable"),
    (E.ExtractionError, 503, "model_unavailable"),
)


def status_of(e: BaseException) -> tuple[int, str]:
    """(status, error type) for an error; refusals carry their own type (`kind`); anything else is 500."""
    if isinstance(e, (E.CypherRefusedError, E.SparqlRefusedError)):
        return 400, e.kind
    for cls, status, kind in TABLE:
        if isinstance(e, cls):
            return status, kind
    return 500, "internal_error"
