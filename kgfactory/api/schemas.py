"""Request bodies (with the examples the OpenAPI docs show). Responses are the application layer's results
(service/results.py), the same models the SDK returns; the limits come from service/limits.py."""
from __future__ import annotations

import json
from typing import Annotated, Any, Callable, Literal, get_args

from fastapi import Path
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from ..errors import InvalidParameterError
from ..service import limits as L
from ..service.limits import MAX_ID_CHARS

Mode = Literal["vector", "graph", "hybrid"]
assert get_args(Mode) == L.MODES, "the request schema's modes are service/limits.py's"
_MAX_DEPTH = 64


def _lone_surrogate_at(value: Any, path: tuple = (), depth: int = 0) -> tuple | None:
    """The location of the first string (value or key) holding an unpaired UTF-16 surrogate, else None.

    JSON lets a client send "\\ud800" on its own; Python decodes it into a str that no store, log or socket
    can encode (UnicodeEncodeError deep in a handler). Looked for everywhere, `Any` fields included."""
    if isinstance(value, str):
        return path if has_lone_surrogate(value) else None
    if depth > _MAX_DEPTH:  # the body size limit bounds this already; never recurse without end
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and has_lone_surrogate(k):
                return (*path, k.encode("utf-8", "backslashreplace").decode())
            found = _lone_surrogate_at(v, (*path, k), depth + 1)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _lone_surrogate_at(v, (*path, i), depth + 1)
            if found is not None:
                return found
    return None


def has_lone_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class Body(BaseModel):
    """Base of every JSON request body: a string anywhere in it (values and keys, `Any` fields too) that holds
    an unpaired surrogate is refused with 422 naming the field, before a handler runs."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = _lone_surrogate_at(data)
        if where is not None:
            field = ".".join(str(x) for x in where) or "body"
            raise PydanticCustomError("invalid_unicode", "{field}: text holds an unpaired UTF-16 surrogate "
                                      "(\\ud800-\\udfff), which is not valid Unicode; send UTF-8 text",
                                      {"field": field})
        return data


def _check_id(value: str) -> str:
    """Ids are short printable text: control characters (NUL included), unpaired surrogates or an overlong
    id can name nothing stored, so they are refused before any store is asked (the API answers 404)."""
    if len(value) > MAX_ID_CHARS:
        raise PydanticCustomError("bad_id", "ids are at most {n} characters", {"n": MAX_ID_CHARS})
    if has_lone_surrogate(value) or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        raise PydanticCustomError("bad_id", "ids and tags are printable text: no control characters or unpaired "
                                  "surrogates")
    return value


# a path parameter naming a document, entity or job: checked once here, used by every id route
PathId = Annotated[str, Path(min_length=1, description="An id as the API returned it."), AfterValidator(_check_id)]
# the same rule for ids and tags inside a body (filters): refused with 422 naming the field
BodyId = Annotated[str, Field(min_length=1), AfterValidator(_check_id)]
Tag = Annotated[str, Field(min_length=1, max_length=L.MAX_TAG_CHARS), AfterValidator(_check_id)]


class QueryFilters(Body):
    """Narrow the search. The tenant is never a filter: it comes from the API key."""

    model_config = ConfigDict(extra="forbid")
    tag: list[Tag] | None = Field(default=None, max_length=L.MAX_FILTER_TAGS, description="Only documents with one of these tags.")
    doc_id: list[BodyId] | None = Field(default=None, max_length=L.MAX_FILTER_DOC_IDS, description="Only these documents.")


class QueryRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Who founded Helios Robotics?", "mode": "hybrid", "top_k": 5}]})
    question: str = Field(min_length=1, max_length=L.MAX_QUESTION_CHARS)
    mode: Mode = "hybrid"
    top_k: StrictInt = Field(default=L.DEFAULT_TOP_K, ge=L.MIN_TOP_K, le=L.MAX_TOP_K)
    filters: QueryFilters | None = None
    stream: StrictBool = Field(default=False, description="Stream the answer as server-sent events.")


class SearchRequest(Body):
    """/v1/query's body without `stream`; `query` is accepted as another name for `question`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={"examples": [
        {"question": "Who founded Helios Robotics?", "mode": "hybrid", "top_k": 5}]})
    question: str = Field(min_length=1, max_length=L.MAX_QUESTION_CHARS, validation_alias=AliasChoices("question", "query"))
    mode: Mode = "hybrid"
    top_k: StrictInt = Field(default=L.DEFAULT_TOP_K, ge=L.MIN_TOP_K, le=L.MAX_TOP_K)
    filters: QueryFilters | None = None


class TextDocument(Body):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=L.MAX_TITLE_CHARS, description="Also names the document: the same title again replaces it.")
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextsIngestRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"texts": [{"title": "Helios", "text": "Helios Robotics was founded by Ada Park in Oslo."}], "tags": ["demo"]}]})
    texts: list[TextDocument] = Field(min_length=1, max_length=L.MAX_TEXTS_PER_REQUEST)
    tags: list[Tag] = Field(default_factory=list, max_length=L.MAX_TAGS)


class CypherRequest(Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "MATCH (e:Organization) RETURN e.name AS name LIMIT $n", "params": {"n": 10}}]})
    query: str = Field(min_length=1, max_length=L.MAX_CYPHER_CHARS)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: StrictInt | None = Field(default=None, ge=1, description="Capped by KGF_CYPHER_TIMEOUT_MS.")
    max_rows: StrictInt | None = Field(default=None, ge=1, description="Capped by KGF_CYPHER_MAX_ROWS.")


class ChatMessage(Body):
    role: str = Field(max_length=40)
    content: str | list[dict[str, Any]] | None = None

    def text(self, i: int) -> str:
        """The message's text: a string, or its text parts joined; other parts (images, audio, files) are refused
        by name, not dropped."""
        c = self.content
        if c is None or isinstance(c, str):
            return c or ""
        parts = []
        for j, part in enumerate(c):
            kind = part.get("type", "text")
            if kind not in ("text", "input_text"):
                raise InvalidParameterError(f"messages[{i}].content[{j}]: parts of type {kind!r} are not supported; "
                                            "send text", "messages")
            parts.append(str(part.get("text", "")))
        return " ".join(parts)


def _set(v: Any) -> bool:
    return v is not None and v is not False and v != [] and v != {}


# OpenAI chat parameters that cannot be honoured: each is refused (400 naming it) when it asks for something,
# rather than silently ignored. The rest (temperature, top_p, max_tokens, seed, user, stream_options, stop, ...)
# are accepted and have no effect: the answer comes from the knowledge base.
_REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (lambda v: v not in (None, 1), "one choice is generated: leave n out or send 1"),
    "tools": (_set, "tool calling is not supported: the answer comes from the knowledge base"),
    "functions": (_set, "function calling is not supported: the answer comes from the knowledge base"),
    "tool_choice": (lambda v: v not in (None, "none", "auto"), "tool calling is not supported"),
    "function_call": (lambda v: v not in (None, "none", "auto"), "function calling is not supported"),
    "logprobs": (_set, "log probabilities are not available"),
    "top_logprobs": (lambda v: v not in (None, 0), "log probabilities are not available"),
    "response_format": (lambda v: _set(v) and not (isinstance(v, dict) and v.get("type") == "text"),
                        "only text answers are made (response_format type 'text')"),
    "audio": (_set, "only text answers are made"),
    "modalities": (lambda v: _set(v) and v != ["text"], "only text answers are made (modalities ['text'])"),
    "web_search_options": (_set, "web search is not offered: the answer comes from the knowledge base"),
}


class ChatRequest(Body):
    """The OpenAI chat-completions body. Parameters that ask for what cannot be given (n>1, tools, logprobs,
    JSON output, audio) are refused by `refuse_unsupported`; harmless ones are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "kgfactory", "messages": [{"role": "user", "content": "Who founded Helios Robotics?"}]}]})
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=L.MAX_CHAT_MESSAGES)
    stream: StrictBool = False
    top_k: StrictInt = Field(default=L.DEFAULT_TOP_K, ge=L.MIN_TOP_K, le=L.MAX_TOP_K, description="kgfactory extension: passages to retrieve.")

    def refuse_unsupported(self) -> None:
        extra = self.model_extra or {}
        for name, (asks, why) in _REFUSED.items():
            if name in extra and asks(extra[name]):
                raise InvalidParameterError(f"{name}={json.dumps(extra[name], default=str)[:80]} is not supported: "
                                            f"{why}", name)


class EmbeddingsRequest(Body):
    """The OpenAI embeddings body. `model`: a served model id (`kgfactory`, ...) or the embedder's own id; the
    vectors always come from the knowledge base's embedder."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "kgfactory", "input": ["Who founded Helios Robotics?"]}]})
    model: str = Field(min_length=1, max_length=200)
    input: str | list[Any] = Field(description="A string or a list of strings (token-id arrays are refused).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, ge=1, description="Only the embedder's own size.")
