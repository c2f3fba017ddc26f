"""Uploaded files: `<data_dir>/uploads/<tenant>/<name>`, the stable source of the documents read from them.

The copy is the user's data as much as the stored chunks are, so deleting the last document read from an
uploaded file deletes the file too. Paths are computed here only, and never leave the uploads folder.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigError
from ..ports import GraphStore
from ..rows import DocumentRow

log = logging.getLogger(__name__)


def uploads_root(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "uploads"


def tenant_dir(data_dir: Path, tenant: str) -> Path:
    """The tenant's upload folder; refuses a tenant name that would point anywhere else."""
    root = uploads_root(data_dir)
    d = (root / tenant).resolve()
    if d.parent != root or not tenant or tenant.startswith("."):
        raise ConfigError(f"tenant {tenant!r} cannot name an upload folder")
    return d


def source_file(doc: DocumentRow) -> str:
    """The file a document was read from: its `path` fact, else its source without a '#record' suffix."""
    meta = doc.metadata if isinstance(doc.metadata, dict) else {}
    return str(meta.get("path") or (doc.source or "").split("#", 1)[0])


def remove_copy(data_dir: Path, doc: DocumentRow, graph: GraphStore) -> Path | None:
    """After `doc` was deleted: remove the uploaded file it came from when it lies in its tenant's upload
    folder and no other document of that tenant still comes from it. Returns the removed path."""
    try:
        folder = tenant_dir(data_dir, doc.tenant or "")
    except ConfigError:
        return None
    raw = source_file(doc)
    if not raw:
        return None
    path = Path(raw)
    if path.parent != folder or path.is_symlink() or not path.is_file():
        return None  # not an upload of this tenant (a CLI ingest reads the user's own files: never touched)
    if graph.count_documents_from_file(doc.tenant, raw) > 0:
        return None  # other records of the same upload remain
    try:
        path.unlink()
    except OSError as e:
        log.warning("could not remove uploaded file %s: %s", path, e)
        return None
    return path
