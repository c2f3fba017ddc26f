"""Export the sentence-transformers model to ONNX once, into the data directory's model cache.

Why our own export: optimum (sentence-transformers' ONNX route) pins an older transformers. The graph is the
transformer plus the model's own pooling and normalisation (checked against its modules.json and 1_Pooling
config: mean pooling, then Normalize), so one session call gives the final vectors. `onnx-int8` is the fp32
graph dynamically quantised (int8 weights per channel, MatMuls only: per-tensor weights or quantised embeddings
gave cosines down to 0.88 against fp32; per channel stays at 0.99 or above on passages). The first and last
layers stay fp32: measured on 1,000 MuSiQue entity names, that halves the loss (mean cosine 0.9922 -> 0.9949,
names under 0.99: 132 -> 19) at no measurable speed cost.

Cache layout: <cache>/<model>-<sha8>-<backend>/{model.onnx, export.json}, written to a temporary folder and
renamed into place, under a file lock so concurrent processes export once. export.json records the source
weights' SHA-256 and the ONNX file's own, checked when the cache is reused."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import EmbeddingError
from .embedder import sha256_file

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when the exported graph changes: the cache folder is then rebuilt
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def check_pipeline(path: Path) -> None:
    """Refuse a model whose sentence-transformers modules are not Transformer -> mean Pooling (-> Normalize):
    the exported graph hard-codes that pipeline."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pool_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pool = json.loads((path / pool_dir / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise EmbeddingError(f"{path}: not a sentence-transformers model this exporter knows ({e}); "
                             "use KGF_EMBED_BACKEND=torch") from e
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode") and v]
    if kinds[:2] != ["Transformer", "Pooling"] or modes != ["pooling_mode_mean_tokens"] \
            or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise EmbeddingError(f"{path}: modules {kinds} with pooling {modes}: the ONNX export supports mean pooling "
                             "only; use KGF_EMBED_BACKEND=torch")


def normalizes(path: Path) -> bool:
    modules = json.loads((path / "modules.json").read_text())
    return any(m["type"].endswith("Normalize") for m in modules)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """One exporter at a time per cache folder, across processes (a server and a CLI may start together)."""
    from filelock import FileLock

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        yield


def _export_fp32(src: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        """Transformer -> mean pooling over the attention mask -> L2 normalisation."""

        def __init__(self, model: torch.nn.Module, normalize: bool):
            super().__init__()
            self.model = model
            self.normalize = normalize

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1) if self.normalize else pooled

    model = AutoModel.from_pretrained(str(src), local_files_only=True).eval()
    wrapped = Pooled(model, normalizes(src))
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {k: {0: "batch", 1: "sequence"} for k in INPUTS} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency
        torch.onnx.export(wrapped, (dummy, dummy, torch.zeros_like(dummy)), str(out), input_names=list(INPUTS),
                          output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _quantize(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)]
    layers = sorted({int(m.group(1)) for n in nodes if (m := re.search(r"layer\.(\d+)/", n))})
    if len(layers) > 2:  # first and last layer stay fp32: short texts (entity names) lose most there
        nodes = [n for n in nodes if not re.search(rf"layer\.({layers[0]}|{layers[-1]})/", n)]
    logging.getLogger("root").setLevel(logging.ERROR)  # "consider pre-processing" notice on the root logger
    quantize_dynamic(str(fp32), str(out), op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes,
                     per_channel=True, weight_type=QuantType.QInt8)


def exported_model(src: Path, weights_sha: str, label: str, backend: str, cache: Path) -> Path:
    """The cached ONNX file for (model, weights, backend), exported now if missing or damaged."""
    if backend not in ("onnx", "onnx-int8"):
        raise EmbeddingError(f"no ONNX export for backend {backend!r}")
    folder = cache / f"{label}-{weights_sha[:8]}-{backend}"
    want = {"source_sha256": weights_sha, "backend": backend, "export_version": EXPORT_VERSION}
    with _locked(cache / f".{folder.name}.lock"):
        meta_path, model_path = folder / "export.json", folder / "model.onnx"
        if meta_path.exists() and model_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError:
                meta = {}
            if {k: meta.get(k) for k in want} == want and meta.get("onnx_sha256") == sha256_file(model_path):
                return model_path
            log.warning("%s: cached export is stale or damaged; exporting again", folder)
        check_pipeline(src)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache))
        try:
            log.info("exporting %s to ONNX (%s) into %s", src, backend, folder)
            fp32 = tmp / ("model.onnx" if backend == "onnx" else "model-fp32.onnx")
            _export_fp32(src, fp32)
            if backend == "onnx-int8":
                _quantize(fp32, tmp / "model.onnx")
                fp32.unlink()
            meta = want | {"onnx_sha256": sha256_file(tmp / "model.onnx"), "source": str(src)}
            (tmp / "export.json").write_text(json.dumps(meta, indent=1))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except EmbeddingError:
            raise
        except Exception as e:
            raise EmbeddingError(f"exporting {src} to ONNX ({backend}) failed: {e}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / "model.onnx"
