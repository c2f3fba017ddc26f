"""Embedder port adapter on OpenVINO (KGF_EMBED_BACKEND=openvino | openvino-bf16), CPU only.

Why a second CPU runtime: on CPUs with native bf16 (AVX512_BF16, AMX) OpenVINO runs the same exported fp32 ONNX
graph with bf16 matmuls (fp32 accumulation) about 1.4-1.9x faster than ONNX Runtime fp32 here (BENCHMARKS.md), with
vectors at cosine >= 0.9999 to fp32, where int8 lost recall. `openvino` is fp32 (ONNX Runtime's speed here).
Tokenising, length-bucketed batches and the export cache are OnnxEmbedder's; only the session differs."""
from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .onnx_embedder import OnnxEmbedder

log = logging.getLogger(__name__)

PRECISION = {"openvino": "f32", "openvino-bf16": "bf16"}


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin has native bf16 here (False when OpenVINO is not installed)."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or no CPU plugin: auto then picks ONNX Runtime
        return False


class OpenVinoEmbedder(OnnxEmbedder):
    """OpenVINO embedder over the fp32 ONNX export; one infer request per calling thread."""

    BACKENDS = ("openvino", "openvino-bf16")
    EXPORT = {"openvino": "onnx", "openvino-bf16": "onnx"}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def _load(self) -> Any:
        if self._session is None:  # before the export: a missing runtime should not cost one
            try:
                import openvino  # noqa: F401
            except ImportError as e:
                raise ConfigError(f"KGF_EMBED_BACKEND={self.backend} needs the openvino package "
                                  "(pip install openvino), or use KGF_EMBED_BACKEND=onnx") from e
        return super()._load()

    def _open(self, onnx_path: Path) -> tuple[Any, int]:
        import openvino as ov

        precision = PRECISION[self.backend]
        if precision == "bf16" and not native_bf16():
            log.warning("KGF_EMBED_BACKEND=openvino-bf16: this CPU has no native bf16; running fp32 (the vectors "
                        "agree with bf16 ones at cosine >= 0.9999)")
            precision = "f32"
        core = ov.Core()
        # no per-shape runtime cache: length-bucketed batches come in many shapes, and the cache (5,000 entries by
        # default) grew the process by ~370 MiB over a MuSiQue-sized ingest and kept growing; without it memory
        # stays flat after the first shapes, at the same speed (measured here)
        compiled = core.compile_model(str(onnx_path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                             "INFERENCE_NUM_THREADS": self.threads,
                                                             "INFERENCE_PRECISION_HINT": precision,
                                                             "CPU_RUNTIME_CACHE_CAPACITY": 0})
        shape = compiled.outputs[0].get_partial_shape()
        dim = shape[-1].get_length() if shape.rank.is_static and shape[-1].is_static else 0
        return compiled, int(dim)

    def _run(self, session: Any, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:  # an infer request is not thread-safe; the compiled model is
            request = self._local.request = session.create_infer_request()
        out = request.infer({"input_ids": input_ids, "attention_mask": mask,
                             "token_type_ids": np.zeros_like(input_ids)})
        return np.array(out[0], dtype=np.float32)  # copy: the request reuses its output buffer
