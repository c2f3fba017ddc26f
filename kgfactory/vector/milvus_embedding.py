"""The embedding identity recorded with the Milvus collections, and `kgf reindex`'s build-then-swap.

Why: vectors from different embedders (another model, or the same model on another backend: torch fp32, ONNX,
int8) are close but not the same space; mixed in one collection they rank each other wrongly without any error.
Each collection carries a property `kgf.embedding` = {"model": id@sha8, "backend", "dim"}; the first read or
write compares it with the configured embedder. Collections written before the record existed are adopted as
torch (the only backend then) and of the configured model.

Reindex writes into `<name>__reindex` collections, then swaps by renaming (old -> `<name>__old`, new -> name)
and drops the old ones: a failure before the swap leaves the live collections untouched."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from ..errors import EmbeddingMismatchError

log = logging.getLogger(__name__)

PROPERTY = "kgf.embedding"
STAGING = "__reindex"
OLD = "__old"


def describe(identity: dict[str, Any] | None) -> str:
    if identity is None:
        return "nothing"
    model = identity.get("model") or "the configured model"
    extra = ", adopted: written before backends were recorded" if identity.get("adopted") else ""
    return f"{model} on {identity.get('backend')} ({identity.get('dim')}-dim{extra})"


def same_space(stored: dict[str, Any], want: dict[str, Any]) -> bool:
    if stored.get("backend") != want.get("backend") or int(stored.get("dim") or 0) != int(want.get("dim") or 0):
        return False
    return stored.get("model") is None or stored.get("model") == want.get("model")


class EmbeddingRecord:
    """Mixin of MilvusVectorStore (needs client, _call, _collection_dim, _create_collection, _upsert and the
    collection names)."""

    CHUNKS: str
    ENTITIES: str
    client: Any
    _call: Callable[..., Any]
    _collection_dim: Callable[[str], int | None]
    _create_collection: Callable[[str, bool, int], None]
    _upsert: Callable[[str, list[dict]], None]
    _load_with_retry: Callable[[str], None]
    is_server: bool
    _dim: int | None
    expected_embedding: Callable[[], dict[str, Any]] | None = None
    _embedding_checked: bool = False

    def bind_embedding(self, identity: Callable[[], dict[str, Any]] | None) -> None:
        """The configured embedder's identity (a callable: computing it loads the model, so only on first use)."""
        self.expected_embedding = identity
        self._embedding_checked = False

    def embedding_record(self) -> dict[str, Any] | None:
        """What the chunk collection records; None when there is no collection yet."""
        if self.CHUNKS not in self._call("list_collections", self.client.list_collections):
            return None
        return self._record_of(self.CHUNKS)

    def _record_of(self, name: str) -> dict[str, Any]:
        desc = self._call("describe_collection", self.client.describe_collection, name)
        raw = (desc.get("properties") or {}).get(PROPERTY)
        if raw:
            return dict(json.loads(raw))
        return {"model": None, "backend": "torch", "dim": self._collection_dim(name), "adopted": True}

    def record_embedding(self, identity: dict[str, Any], names: tuple[str, ...] = ()) -> None:
        value = json.dumps({k: identity[k] for k in ("model", "backend", "dim")}, sort_keys=True)
        for name in names or (self.CHUNKS, self.ENTITIES):
            self._call("alter_collection_properties", self.client.alter_collection_properties, name,
                       properties={PROPERTY: value})

    def check_embedding(self, created: bool = False) -> None:
        """Refuse to read or write vectors of another embedder (EmbeddingMismatchError, naming both and the fix).
        `created`: the collections were just made by this embedder, so record it."""
        if self._embedding_checked or self.expected_embedding is None:
            return
        if created:
            self.record_embedding(self.expected_embedding())
            self._embedding_checked = True
            return
        stored = self.embedding_record()
        if stored is None:
            return  # nothing stored yet: ensure() records the embedder when it creates the collections
        want = self.expected_embedding()
        if not same_space(stored, want):
            raise EmbeddingMismatchError(
                f"the vector collections hold vectors of {describe(stored)}, but the configured embedder is "
                f"{describe(want)}; vectors of different embedders cannot be compared. Run `kgf reindex` to "
                "re-embed the stored chunks and entities with the configured embedder, or set KGF_EMBED_BACKEND="
                f"{stored.get('backend')} to use the stored vectors as they are", stored=stored, configured=want)
        self._embedding_checked = True

    # -- kgf reindex: build new collections, then swap ---------------------------------------------------------
    def start_rebuild(self, identity: dict[str, Any]) -> None:
        names = set(self._call("list_collections", self.client.list_collections))
        for live in (self.CHUNKS, self.ENTITIES):
            if live + STAGING in names:  # a rebuild that failed earlier
                self._call("drop_collection", self.client.drop_collection, live + STAGING)
            self._create_collection(live + STAGING, live == self.CHUNKS, int(identity["dim"]))
        self.record_embedding(identity, (self.CHUNKS + STAGING, self.ENTITIES + STAGING))

    def write_rebuild(self, kind: str, rows: list[dict[str, Any]]) -> None:
        live = {"chunks": self.CHUNKS, "entities": self.ENTITIES}[kind]
        self._upsert(live + STAGING, rows)

    def abort_rebuild(self) -> None:
        names = set(self._call("list_collections", self.client.list_collections))
        for live in (self.CHUNKS, self.ENTITIES):
            if live + STAGING in names:
                self._call("drop_collection", self.client.drop_collection, live + STAGING)

    def finish_rebuild(self, identity: dict[str, Any]) -> None:
        """Swap the rebuilt collections in (renames), then drop the old ones."""
        c = self.client
        for live in (self.CHUNKS, self.ENTITIES):
            self._call("flush", c.flush, live + STAGING)
        names = set(self._call("list_collections", c.list_collections))
        for live in (self.CHUNKS, self.ENTITIES):
            if live + OLD in names:
                self._call("drop_collection", c.drop_collection, live + OLD)
            if live in names:
                self._call("rename_collection", c.rename_collection, live, live + OLD)
            self._call("rename_collection", c.rename_collection, live + STAGING, live)
            self._load_with_retry(live)
        for live in (self.CHUNKS, self.ENTITIES):
            if live + OLD in names or live in names:
                try:
                    self._call("drop_collection", c.drop_collection, live + OLD)
                except Exception as e:  # the swap is done; an old copy left behind is only space
                    log.warning("could not drop %s: %s", live + OLD, e)
        self._dim = int(identity["dim"])
        self._embedding_checked = False

    def recover_swap(self, client: Any) -> None:
        """A swap interrupted between its renames leaves `<name>__old` and no `<name>`: rename it back."""
        names = set(client.list_collections())
        for live in (self.CHUNKS, self.ENTITIES):
            if live not in names and live + OLD in names:
                log.warning("%s: an interrupted reindex left it as %s; restoring it", live, live + OLD)
                client.rename_collection(live + OLD, live)
