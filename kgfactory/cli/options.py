"""What every `kgf` command module shares: the --data-dir option, the check that a read-only command has a knowledge
base to read, and the services context that opens a data directory (defined in main.py; reached lazily here so the
command modules main.py registers need not import it)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DataDir = typer.Option(None, "--data-dir", "-d", help="Data directory (default: $KGF_DATA_DIR or ./kgf-data).")


def services(data_dir, create: bool = False, **overrides):
    """Open the data directory; `create`: a command that writes (ingest, import, ontology load) may make it."""
    from .main import services as open_services

    return open_services(data_dir, create=create, **overrides)


def require_knowledge_base(data_dir: Optional[Path]) -> None:
    """Refuse (exit 1) a data directory that does not exist or holds no knowledge base, saying how to make one:
    a read-only command must not leave an empty one behind. Stores on servers (Neo4j, a Milvus URI) keep nothing
    in the directory, so only the embedded ones are looked for."""
    from .errors import fail, settings

    s = settings(data_dir)
    d = s.data_dir.expanduser().resolve()
    marks = ([d / "graph"] if s.graph_backend == "falkordb" else []) + ([] if s.milvus_uri else [d / "milvus.db"])
    if not marks:
        return
    if not d.is_dir():
        fail(f"no knowledge base at {d}: the directory does not exist; create one with `kgf ingest PATH -d {d}`")
    if not any(m.exists() for m in marks):
        fail(f"no knowledge base at {d}: the directory holds none; create one with `kgf ingest PATH -d {d}`")
