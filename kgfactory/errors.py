"""One root error with a subclass per subsystem, so callers (CLI, API) can map them in one place."""
from __future__ import annotations


class KGFError(Exception):
    """Root of every error kgfactory raises on purpose."""


class ConfigError(KGFError):
    """A setting is missing or wrong; the message names the setting."""


class ParseError(KGFError):
    """A document could not be read; the message names the file and the reason."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class OntologyError(KGFError):
    """An ontology could not be loaded or is inconsistent."""


class SparqlError(OntologyError):
    """A SPARQL query was refused (read-only endpoint), malformed, or ran past its timeout."""


class SparqlRefusedError(SparqlError):
    """A SPARQL query refused before evaluation: too long, too deeply nested, federated (SERVICE), or one the
    isolated parse check could not plan in time or crashed on. `kind` is the API's error type for it."""

    def __init__(self, message: str, kind: str = "query_refused"):
        self.kind = kind
        super().__init__(message)


class EmbeddingError(KGFError):
    """The embedding model could not be loaded or failed."""


class EmbeddingMismatchError(EmbeddingError):
    """The vector collections were filled by another embedder (model, backend or dimension) than the configured
    one; `kgf reindex` re-embeds them. `stored`/`configured` are the two identities."""

    def __init__(self, message: str, stored: dict | None = None, configured: dict | None = None):
        self.stored, self.configured = stored or {}, configured or {}
        super().__init__(message)


class ExtractionError(KGFError):
    """Entity/relation extraction failed."""


class StoreError(KGFError):
    """Base for storage failures (wrapped vendor exceptions)."""


class GraphStoreError(StoreError):
    """The graph engine failed or is unreachable."""


class CypherRefusedError(KGFError):
    """An analyst's Cypher refused before it reached the engine: a write clause, LOAD CSV, a procedure that is
    not a read, or text too long or too deeply nested to parse safely. `kind` is the API's error type for it."""

    def __init__(self, message: str, kind: str = "query_refused"):
        self.kind = kind
        super().__init__(message)


class GraphUnavailableError(GraphStoreError):
    """The graph engine did not answer within its deadline (KGF_GRAPH_CALL_TIMEOUT_S), refused the connection,
    or is held by another process. The API maps it to HTTP 503; the request may be retried later. `timed_out`
    tells a missed deadline (the engine may be stuck or busy) from a refused or lost connection (it may be gone)."""

    def __init__(self, message: str, timed_out: bool = False):
        self.timed_out = timed_out
        super().__init__(message)


class CypherQueryError(GraphStoreError):
    """An analyst's Cypher that reached the engine and failed there (syntax, types, a missing function): the
    query's fault, not the engine's. The API maps it to HTTP 400 `bad_query`."""


class CypherTimeout(CypherQueryError):
    """An analyst's Cypher that ran past its timeout (KGF_CYPHER_TIMEOUT_MS): HTTP 408 `timeout`."""


class TenantScopeError(KGFError):
    """The caller's key is scoped to one tenant, but this graph backend cannot confine analyst Cypher to one tenant
    (Neo4j Community Edition: one database, no per-tenant copy): HTTP 403; the message says which key would do."""


class ViewBuildError(GraphUnavailableError):
    """A tenant's read-only view could not be built: the engine's fault, not the query's (HTTP 503)."""


class VectorStoreError(StoreError):
    """The vector store failed or is unreachable."""


class InvalidInputError(KGFError):
    """A value no store can hold (a NUL or other control character, an unpaired surrogate): the input is
    wrong, the store is up. Kept apart from StoreError so a bad id is never reported as a store outage."""


class InvalidParameterError(InvalidInputError):
    """A request parameter the operation does not support, or a value outside what it accepts (HTTP 400);
    `param` names it (OpenAI clients show it as the error's `param`)."""

    def __init__(self, message: str, param: str | None = None):
        self.param = param
        super().__init__(message)


class GraphInputError(GraphStoreError, InvalidInputError):
    """The graph engine cannot take a value it was given (raised before the query is sent)."""


class VectorInputError(VectorStoreError, InvalidInputError):
    """The vector store cannot take a value it was given (raised before the request is sent)."""


class IngestError(KGFError):
    """An ingest run failed as a whole (not one bad document: those are reported, not raised)."""


class NotFoundError(KGFError):
    """A document, entity or run id does not exist."""


class RetrievalError(KGFError):
    """Bad query or retrieval failure."""


class LLMError(KGFError):
    """The LLM endpoint failed."""


class LLMUnavailableError(LLMError):
    """The endpoint did not answer: connection refused, timeout, 429/5xx after retries, or circuit breaker open.

    Answerers fall back to the extractive answer on it; extraction falls back to spaCy."""


class LLMRefusedError(LLMError):
    """The endpoint answered and refused the request (HTTP 4xx other than 408/409/429): `status` says which."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class LLMBudgetError(LLMError):
    """A tenant's LLM token budget is spent (KGF_LLM_TENANT_TOKEN_BUDGET). The API maps it to HTTP 429."""

    def __init__(self, tenant: str, used: int, budget: int):
        self.tenant, self.used, self.budget = tenant, used, budget
        super().__init__(f"LLM token budget spent for tenant {tenant!r}: {used} of {budget} tokens used "
                         "(KGF_LLM_TENANT_TOKEN_BUDGET)")
