"""The Python SDK: `Client` / `AsyncClient` for a kgfactory server (needs only httpx and pydantic), typed results
and an error tree mirroring the API's. In-process use without a server: `KnowledgeBase` (here or as
`kgfactory.KnowledgeBase`; imported on first use, and its `open()` says what to install on the light install).
LangChain: `kgfactory.sdk.langchain` (the `[langchain]` extra)."""
from typing import Any

from .async_client import AsyncClient
from .client import Client
from .errors import (APIError, AuthenticationError, KGFactoryError, NotAvailableError, NotFoundError,
                     PermissionDeniedError, RateLimitError, ServerError, TimeoutError, TransportError,
                     ValidationError)
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, Job, SearchResult, SparqlResult)

__all__ = ["Client", "AsyncClient", "KnowledgeBase", "KGFactoryError", "TransportError", "TimeoutError", "APIError",
           "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ValidationError", "RateLimitError",
           "ServerError", "NotAvailableError", "AskResult", "SearchResult", "IngestResult", "IngestProgress", "Job",
           "DocumentInfo", "DocumentDetail", "DeleteResult", "CypherResult", "SparqlResult", "EntityDetail"]


def __getattr__(name: str) -> Any:
    if name == "KnowledgeBase":  # sdk/local.py imports only light modules; open() loads the server parts
        from .local import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module 'kgfactory.sdk' has no attribute {name!r}")
