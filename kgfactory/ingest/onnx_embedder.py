"""Embedder port adapter on ONNX Runtime (KGF_EMBED_BACKEND=onnx | onnx-int8), CPU only.

The model is exported once into the data directory's model cache (onnx_export.py) from the same verified weights
the torch backend loads, and tokenised with the model's own tokenizer.json (the fast tokenizer
sentence-transformers uses, truncated at the model's max_seq_length). Texts go in length-bucketed batches."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, EmbeddingError
from .embed_batching import length_buckets, pad_batch
from .embedder import BUNDLED, batch_limits, identity_of, model_label, resolve_model_path, \
    verified_weights

log = logging.getLogger(__name__)


def cpu_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxEmbedder:
    """ONNX Runtime embedder; exports (or reuses) the model on first use, not at construction. Subclasses run the
    same exported file on another runtime by overriding `_open` and `_run` (openvino_embedder.py)."""

    BACKENDS: tuple[str, ...] = ("onnx", "onnx-int8")
    EXPORT: dict[str, str] = {}  # backend -> the exported file it runs (default: its own)

    def __init__(self, model: str = BUNDLED, *, backend: str = "onnx-int8", cache_dir: Path, sha256_prefix: str = "",
                 batch_size: int = 16, threads: int = 0, device: str = "cpu"):
        if backend not in self.BACKENDS:
            raise ConfigError(f"KGF_EMBED_BACKEND={backend!r} is not one of {', '.join(self.BACKENDS)}")
        if device != "cpu":
            raise ConfigError(f"KGF_EMBED_BACKEND={backend} runs on the CPU only, but KGF_DEVICE resolves to {device}: "
                              "use KGF_EMBED_BACKEND=torch on a GPU (fp16), or KGF_DEVICE=cpu")
        self.model_name = model
        self.backend = backend
        self.cache_dir = Path(cache_dir)
        self.sha256_prefix = sha256_prefix.lower()
        self.batch_size = batch_size
        self.threads = threads or cpu_cores()
        self.device = "cpu"
        self.model_id = model
        self._session: Any = None
        self._tokenizer: Any = None
        self._dim = 0

    def _load(self) -> Any:
        if self._session is not None:
            return self._session
        path = resolve_model_path(self.model_name)
        digest = verified_weights(path, self.sha256_prefix)  # always: the cache is keyed by it
        from .onnx_export import exported_model

        export = self.EXPORT.get(self.backend, self.backend)
        onnx_path = exported_model(path, digest, model_label(path, self.model_name), export, self.cache_dir)
        try:
            from tokenizers import Tokenizer

            max_len = int(json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
            tok = Tokenizer.from_file(str(path / "tokenizer.json"))
            tok.no_padding()  # the file pads every text to 128; we pad per batch
            tok.enable_truncation(max_len)
            session, dim = self._open(onnx_path)
            self._dim = dim or int(json.loads((path / "config.json").read_text())["hidden_size"])
        except (EmbeddingError, ConfigError):
            raise
        except Exception as e:
            raise EmbeddingError(f"could not load the ONNX model {onnx_path} ({self.backend}): {e}") from e
        self.model_id = f"{model_label(path, self.model_name)}@{digest[:8]}"
        self._tokenizer = tok
        self._session = session
        log.info("loaded embedder %s (%s, %d threads, dim %d)", onnx_path, self.backend, self.threads, self._dim)
        return session

    def _open(self, onnx_path: Path) -> tuple[Any, int]:
        """(session, output dimension or 0) for the exported file."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle intra-op threads sleep instead of spinning: ingest runs spaCy and the writes beside the embedder
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        return session, int(session.get_outputs()[0].shape[-1] or 0)

    def _run(self, session: Any, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": input_ids, "attention_mask": mask,
                                  "token_type_ids": np.zeros_like(input_ids)})[0]

    @property
    def dim(self) -> int:
        self._load()
        return self._dim

    @property
    def identity(self) -> dict[str, str | int]:
        dim = self.dim  # loads the model: model_id names the weights' SHA8 only then
        return identity_of(self.model_id, self.backend, dim)

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        session = self._load()
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        try:
            ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            out = np.empty((len(ids), self._dim), dtype=np.float32)
            max_batch, budget = batch_limits(batch_size or self.batch_size, "cpu")  # token-sized: see batch_limits
            for idx in length_buckets([len(x) for x in ids], max_batch=max_batch, token_budget=budget):
                input_ids, mask = pad_batch([ids[i] for i in idx])
                out[idx] = self._run(session, input_ids, mask)
            return out
        except Exception as e:
            raise EmbeddingError(f"embedding {len(texts)} texts failed: {e}") from e

    def warm_up(self) -> None:
        self._load()
