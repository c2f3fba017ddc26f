"""Embed texts with the knowledge base's own embedder, so an application's vectors live in the same space as the
KB's chunks (POST /v1/embeddings, `KnowledgeService.embed`). No data is read: the tenant does not matter."""
from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import InvalidParameterError
from . import limits as L
from .results import EmbedResult


def _texts(inputs: Any) -> list[str]:
    """A string or a list of strings, bounded; token-id arrays (OpenAI accepts them) cannot be read by a model
    with its own tokenizer, so they are refused by name."""
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise InvalidParameterError("input: a string or a non-empty list of strings", "input")
    if any(isinstance(x, int) and not isinstance(x, bool) or isinstance(x, (list, tuple)) for x in inputs):
        raise InvalidParameterError("input: token-id arrays are not accepted (the embedder has its own tokenizer); "
                                    "send the text as a string or a list of strings", "input")
    if len(inputs) > L.MAX_EMBED_INPUTS:
        raise InvalidParameterError(f"input: at most {L.MAX_EMBED_INPUTS} texts a request (got {len(inputs)})",
                                    "input")
    for i, x in enumerate(inputs):
        if not isinstance(x, str) or not x.strip():
            raise InvalidParameterError(f"input[{i}]: a non-empty string", "input")
        if len(x) > L.MAX_EMBED_INPUT_CHARS:
            raise InvalidParameterError(f"input[{i}]: at most {L.MAX_EMBED_INPUT_CHARS} characters (got {len(x)})",
                                        "input")
    return list(inputs)


class Embedding:
    """Mixin of KnowledgeService: needs `services`."""

    services: Any

    @property
    def embed_model(self) -> str:
        """The embedder's id (a loaded model's id names its weights' hash, so it is read after loading)."""
        embedder = self.services.embedder
        _ = embedder.dim  # loads the model: its id is final then
        return str(embedder.model_id)

    def embed(self, inputs: str | Sequence[str], *, dimensions: int | None = None) -> EmbedResult:
        """L2-normalised vectors for the texts, in order. `dimensions` may only restate the model's own size (the
        KB's vectors cannot be shortened without leaving its space)."""
        texts = _texts(inputs)
        embedder = self.services.embedder
        dim = int(embedder.dim)
        if dimensions is not None and dimensions != dim:
            raise InvalidParameterError(f"dimensions: the embedder {embedder.model_id} makes {dim}-dimensional "
                                        f"vectors and cannot shorten them; leave dimensions out or send {dim}",
                                        "dimensions")
        vecs = embedder.embed(texts)
        return EmbedResult(model=str(embedder.model_id), dim=dim, vectors=vecs.tolist(),
                           tokens=sum(math.ceil(len(t) / 4) for t in texts))
