"""kgfactory: GraphRAG over a semantic layer. `import kgfactory` stays light: `KnowledgeBase` (in-process, needs the
`[server]` extra) is imported on first use; the HTTP client is `kgfactory.sdk.Client`."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["KnowledgeBase", "__version__"]


def __getattr__(name: str):
    if name == "KnowledgeBase":
        from .sdk.local import KnowledgeBase

        return KnowledgeBase
    raise AttributeError(f"module 'kgfactory' has no attribute {name!r}")
