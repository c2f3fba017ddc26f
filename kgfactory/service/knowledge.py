"""`KnowledgeService`: every operation of the knowledge base, once, for one tenant over one `Services`.

The API builds one per request (scoped to the caller's key), the SDK's `KnowledgeBase` is one (translating
errors to the SDK's), and the CLI calls it through the SDK. It validates with service/limits.py, raises the core
errors of kgfactory/errors.py (service/status.py maps them to HTTP statuses) and returns the typed results of
service/results.py, the shapes the API sends and the SDK and CLI read.
"""
from __future__ import annotations

from typing import Any

from .analyst import Analyst
from .asking import AnswerStream, Observer, grounding_detail
from .conversation import Chatting, Turn
from .documents import Documents
from .embedding import Embedding
from .explorer import Explorer

__all__ = ["KnowledgeService", "AnswerStream", "Observer", "Turn", "grounding_detail"]


class KnowledgeService(Chatting, Embedding, Documents, Explorer, Analyst):  # Chatting is Asking plus conversations
    """One tenant's view of the knowledge base. Holds no state of its own beyond the tenant: cheap to make per
    request. `observer` (optional) hears retrievals and answers (the API counts metrics with it)."""

    def __init__(self, services: Any, tenant: str | None = None, observer: Observer | None = None):
        self.services = services
        self.tenant = tenant or services.settings.tenant
        self.observer = observer
