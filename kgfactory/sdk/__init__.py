"""The Python SDK: `Client` / `AsyncClient` for a kgfactory server (needs only httpx and pydantic), typed results
and an error tree mirroring the API's. In-process use without a server: `kgfactory.KnowledgeBase`. LangChain:
`kgfactory.sdk.langchain` (the `[langchain]` extra)."""
from .async_client import AsyncClient
from .client import Client
from .errors import (APIError, AuthenticationError, KGFactoryError, NotAvailableError, NotFoundError,
                     PermissionDeniedError, RateLimitError, ServerError, TimeoutError, TransportError,
                     ValidationError)
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, Job, SearchResult, SparqlResult)

__all__ = ["Client", "AsyncClient", "KGFactoryError", "TransportError", "TimeoutError", "APIError",
           "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ValidationError", "RateLimitError",
           "ServerError", "NotAvailableError", "AskResult", "SearchResult", "IngestResult", "IngestProgress", "Job",
           "DocumentInfo", "DocumentDetail", "DeleteResult", "CypherResult", "SparqlResult", "EntityDetail"]
