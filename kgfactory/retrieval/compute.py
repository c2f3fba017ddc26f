"""The traversal and exact-search math, on the device the settings pick.

CPU keeps scipy sparse (the path the retrieval benchmarks were tuned on). On CUDA the same operators run as
torch sparse-CSR products with the matrices resident on the GPU, in float32. Every operator takes a batch:
an (N, B) matrix of B queries' restart vectors, so many questions cost one pass. `TorchOps` also runs on the
CPU (torch's sparse kernels), which is how the tests check that both backends rank alike without a GPU.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)


def resolve_device(setting: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'. An explicit 'cuda' without one is an error."""
    if setting == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch is a dependency
        has_cuda = False
    if setting == "cuda" and not has_cuda:
        from ..errors import ConfigError

        raise ConfigError("KGF_DEVICE=cuda but torch sees no CUDA device; use auto or cpu")
    return "cuda" if has_cuda and setting in ("auto", "cuda") else "cpu"


class ScipyOps:
    """CPU operators over scipy CSR matrices (float64, as tuned)."""

    name = "scipy"
    device = "cpu"

    def __init__(self, transition: sp.csr_matrix, adjacency: sp.csr_matrix, mentions: sp.csr_matrix):
        self.transition = transition
        self.binary = (adjacency > 0).astype(np.float32).tocsr()
        self.mentions = mentions

    def ppr(self, restart: np.ndarray, damping: float, iters: int, tol: float) -> np.ndarray:
        """Personalised PageRank for each column of `restart` (columns already sum to 1 or are zero)."""
        p = np.asarray(restart, dtype=np.float64)
        x = p.copy()
        for _ in range(iters):
            nxt = (1 - damping) * p + damping * (self.transition @ x)
            done = np.abs(nxt - x).sum(axis=0).max() < tol
            x = nxt
            if done:
                break
        return x

    def khop(self, seeds: np.ndarray, hops: int, decay: float) -> np.ndarray:
        score = np.asarray(seeds, dtype=np.float64).copy()
        frontier = score.copy()
        for h in range(1, hops + 1):
            frontier = self.binary @ frontier
            peak = np.maximum(frontier.max(axis=0, keepdims=True), 1e-12)
            frontier = np.where(frontier > 0, frontier / peak, 0.0)
            score = score + (decay ** h) * frontier * (score == 0)
        return self.mentions @ score


class TorchOps:
    """The same operators as torch sparse-CSR products, resident on `device` (cuda, or cpu for parity tests)."""

    name = "torch"

    def __init__(self, transition: sp.csr_matrix, adjacency: sp.csr_matrix, mentions: sp.csr_matrix,
                 device: str = "cuda", dtype=None):
        import torch

        self.torch = torch
        self.device = device
        self.dtype = dtype or torch.float32
        self.transition = _to_torch(transition, device, self.dtype)
        self.binary = _to_torch((adjacency > 0).astype(np.float32).tocsr(), device, self.dtype)
        self.mentions = _to_torch(mentions.tocsr(), device, self.dtype)

    def _dense(self, a: np.ndarray):
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype, device=self.device)

    def ppr(self, restart: np.ndarray, damping: float, iters: int, tol: float, check_every: int = 5) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            p = self._dense(restart)
            x = p.clone()
            for i in range(iters):
                nxt = (1 - damping) * p + damping * (self.transition @ x)
                # a host sync per step would dominate on the GPU: test convergence every few steps
                if (i + 1) % check_every == 0 and float((nxt - x).abs().sum(dim=0).max()) < tol:
                    x = nxt
                    break
                x = nxt
            return x.double().cpu().numpy()

    def khop(self, seeds: np.ndarray, hops: int, decay: float) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            score = self._dense(seeds)
            frontier = score.clone()
            for h in range(1, hops + 1):
                frontier = self.binary @ frontier
                peak = frontier.max(dim=0, keepdim=True).values.clamp_min(1e-12)
                frontier = torch.where(frontier > 0, frontier / peak, torch.zeros_like(frontier))
                score = score + (decay ** h) * frontier * (score == 0)
            return (self.mentions @ score).double().cpu().numpy()


def _to_torch(m: sp.csr_matrix, device: str, dtype):
    import torch

    import warnings

    m = m.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products we use are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.as_tensor(m.indptr, dtype=torch.int64),
                                       torch.as_tensor(m.indices, dtype=torch.int64),
                                       torch.as_tensor(m.data, dtype=dtype), size=m.shape, device=device,
                                       check_invariants=False)


def make_ops(transition: sp.csr_matrix, adjacency: sp.csr_matrix, mentions: sp.csr_matrix, device: str):
    """scipy on the CPU; torch on CUDA. `device='torch-cpu'` forces the torch kernels on the CPU."""
    if device == "cuda":
        return TorchOps(transition, adjacency, mentions, "cuda")
    if device == "torch-cpu":
        return TorchOps(transition, adjacency, mentions, "cpu")
    return ScipyOps(transition, adjacency, mentions)


class ExactIndex:
    """Exact top-k by inner product over vectors kept resident (normalised, so cosine). For small collections
    it beats an HNSW round trip; on CUDA it is one matrix product for a whole batch of queries."""

    def __init__(self, ids: list[str], vectors: np.ndarray, device: str = "cpu"):
        import torch

        self.ids = list(ids)
        self.device = device
        vectors = np.asarray(vectors, dtype=np.float32)
        # torch on the CPU too, not numpy: numpy's OpenBLAS threads spin after a product and then starve the
        # embedder's torch threads (measured: query embedding 26 ms -> 60-70 ms on 2 cores)
        self._m = torch.as_tensor(vectors, device=device, dtype=torch.float16 if device == "cuda" else torch.float32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return int(self._m.shape[1])

    def patched(self, keep: np.ndarray, new_ids: list[str], new_vectors: np.ndarray) -> "ExactIndex":
        """A new index: the rows at positions `keep` (in that order), then the new rows; stays on the device
        (on CUDA only the new rows travel)."""
        import torch

        out = ExactIndex.__new__(ExactIndex)
        out.ids = [self.ids[i] for i in keep] + list(new_ids)
        out.device = self.device
        keep = np.asarray(keep, dtype=np.int64)
        if len(keep) == len(self.ids) and (keep == np.arange(len(keep))).all():
            kept = self._m  # nothing dropped: no gather (torch.cat below still copies, the old index stays intact)
        else:
            kept = self._m[torch.as_tensor(keep, device=self.device)]
        if not len(new_ids):
            out._m = kept
            return out
        new = torch.as_tensor(np.asarray(new_vectors, dtype=np.float32), device=self.device, dtype=self._m.dtype)
        out._m = torch.cat([kept, new]) if len(keep) else new
        return out

    def search(self, queries: np.ndarray, top_k: int, allowed: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
        """Top-k (id, cosine) per query row; `allowed` is an optional boolean mask over the stored vectors."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        n = len(self.ids)
        if n == 0:
            return [[] for _ in range(len(q))]
        k = min(top_k, n)
        import torch

        with torch.no_grad():
            dt = torch.float16 if self.device == "cuda" else torch.float32
            s = torch.as_tensor(q, device=self.device, dtype=dt) @ self._m.T
            if allowed is not None:
                s[:, ~torch.as_tensor(allowed, device=self.device)] = -float("inf")
            top = torch.topk(s.float(), k, dim=1)
            vals, idx = top.values.cpu().numpy(), top.indices.cpu().numpy()
        return [[(self.ids[j], float(v)) for j, v in zip(row_i, row_v) if np.isfinite(v)]
                for row_i, row_v in zip(idx, vals)]
