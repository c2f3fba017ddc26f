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


class EmbeddingError(KGFError):
    """The embedding model could not be loaded or failed."""


class ExtractionError(KGFError):
    """Entity/relation extraction failed."""


class StoreError(KGFError):
    """Base for storage failures (wrapped vendor exceptions)."""


class GraphStoreError(StoreError):
    """The graph engine failed or is unreachable."""


class VectorStoreError(StoreError):
    """The vector store failed or is unreachable."""


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
