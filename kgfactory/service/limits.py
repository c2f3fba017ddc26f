"""The one table of limits, choices and suffixes that the API schemas, the SDK, the CLI and the parsers check.

Plain constants (no imports) so the SDK's light install can read them.
"""
from __future__ import annotations

# questions and retrieval
MAX_QUESTION_CHARS = 2000
MODES = ("vector", "graph", "hybrid")
DEFAULT_MODE = "hybrid"
MIN_TOP_K, MAX_TOP_K, DEFAULT_TOP_K = 1, 100, 5
MAX_FILTER_TAGS = 50
MAX_FILTER_DOC_IDS = 500

# chat (the OpenAI-compatible surface): turns, operator instructions (system messages), follow-up resolution
MAX_CHAT_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000  # one message; only the question's first MAX_QUESTION_CHARS are retrieved on
MAX_INSTRUCTIONS_CHARS = 4000  # system messages, joined, as the answer prompt's operator instructions
MAX_HISTORY_CHARS = 4000  # earlier turns shown to the condense-question step (the latest kept)
HISTORY_TURNS = 6  # earlier messages the condense step sees; without an LLM, user turns looked back on
CARRIED_ENTITIES = 3  # without an LLM: entity names carried from the previous question into the follow-up

# embeddings (POST /v1/embeddings, KnowledgeService.embed)
MAX_EMBED_INPUTS = 256
MAX_EMBED_INPUT_CHARS = 8000  # the bundled MiniLM reads about the first 1000 characters (256 word pieces)

# ids, tags and texts
MAX_ID_CHARS = 200
MAX_TAG_CHARS = 100
MAX_TAGS = 20
MAX_TITLE_CHARS = 300
MAX_TEXTS_PER_REQUEST = 1000

# documents and entities
DOCUMENT_STATUSES = ("complete", "pending", "deleting")
ENTITY_NEIGHBOURS_DEFAULT, ENTITY_NEIGHBOURS_MAX = 50, 500

# the explorer: entity type-ahead, neighbourhood graphs, the quarantine list
MAX_ENTITY_QUERY_CHARS = 200
ENTITY_SEARCH_DEFAULT, ENTITY_SEARCH_MAX = 10, 50
GRAPH_DEPTHS = (1, 2)
GRAPH_NODES_DEFAULT, GRAPH_NODES_MAX = 300, 2000
GRAPH_EDGES_PER_NODE = 5  # edges read per step: at most this many per node allowed (so `truncated` is honest)
MAX_GRAPH_FILTERS = 50  # relation types or classes in one filter
RELATION_CHUNKS_MAX = 20  # supporting chunk ids shown per typed relation (the first, by id)
QUARANTINE_DEFAULT, QUARANTINE_MAX = 100, 1000

# analyst Cypher (the request schema's own caps; the settings cap each call further)
MAX_CYPHER_CHARS = 20000

# files the parsers read; a directory walk takes only these
SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl"})
SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_SUFFIXES))
