"""`kgf migrate`: copy a knowledge base between the embedded stores and servers, then check the counts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, KGFError

if TYPE_CHECKING:
    from ..ports import GraphStore, VectorStore

console = Console()
err = Console(stderr=True)

ALIASES = {"embedded": ("falkordb", "lite"), "servers": ("neo4j", "milvus")}
GRAPHS = ("falkordb", "neo4j")
VECTORS = ("lite", "milvus")


def parse_spec(spec: str) -> tuple[str, str]:
    """'neo4j+milvus' -> ('neo4j', 'milvus'); 'embedded' = falkordb+lite, 'servers' = neo4j+milvus."""
    s = spec.strip().lower()
    if s in ALIASES:
        return ALIASES[s]
    parts = s.split("+")
    if len(parts) != 2 or parts[0] not in GRAPHS or parts[1] not in VECTORS:
        raise ConfigError(f"{spec!r} is not a store spec: use GRAPH+VECTORS with GRAPH in {GRAPHS} and VECTORS in "
                          f"{VECTORS} (lite = Milvus Lite in the data dir), or 'embedded' / 'servers'")
    return parts[0], parts[1]


def side_settings(base, spec: tuple[str, str], data_dir: Path):
    """Settings for one side: embedded parts live in `data_dir`, server parts come from KGF_NEO4J_* / KGF_MILVUS_*."""
    graph, vectors = spec
    if vectors == "milvus" and not base.milvus_uri:
        raise ConfigError("KGF_MILVUS_URI is empty: a '+milvus' side needs a Milvus server URI (or --milvus-uri)")
    return base.model_copy(update={"graph_backend": graph, "data_dir": data_dir.expanduser().resolve(),
                                   "milvus_uri": base.milvus_uri if vectors == "milvus" else ""})


def check_distinct(src, dst, src_spec, dst_spec) -> None:
    """Refuse to copy a store onto itself."""
    same_dir = src.data_dir == dst.data_dir
    if src_spec[0] == dst_spec[0] and (src_spec[0] == "neo4j" or same_dir):
        raise ConfigError(f"source and target are the same {src_spec[0]} graph: give --target-dir for an embedded "
                          "target, or migrate to a different backend")
    if src_spec[1] == dst_spec[1] and (src_spec[1] == "milvus" or same_dir):
        raise ConfigError(f"source and target are the same {'Milvus server' if src_spec[1] == 'milvus' else 'Milvus Lite'} "
                          "store: give --target-dir for an embedded target, or migrate to a different backend")


def migrate_command(
    to: str = typer.Option(..., "--to", help="Target stores: neo4j+milvus (servers), embedded (FalkorDB + Milvus Lite), "
                                              "or any GRAPH+VECTORS with GRAPH falkordb|neo4j, VECTORS lite|milvus."),
    source: Optional[str] = typer.Option(None, "--from", help="Source stores, same forms (default: embedded, or "
                                                              "neo4j+milvus when --to is embedded)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", "-d", help="Data directory of the embedded side(s) "
                                            "(default: $KGF_DATA_DIR or ./kgf-data)."),
    target_dir: Optional[Path] = typer.Option(None, "--target-dir", help="Data directory for an embedded target "
                                              "(default: the data directory)."),
    milvus_uri: Optional[str] = typer.Option(None, "--milvus-uri", help="Milvus server URI (default: $KGF_MILVUS_URI)."),
    milvus_db: Optional[str] = typer.Option(None, "--milvus-db", help="Milvus server database (default: $KGF_MILVUS_DB)."),
    neo4j_uri: Optional[str] = typer.Option(None, "--neo4j-uri", help="Neo4j URI (default: $KGF_NEO4J_URI); the "
                                            "password comes from $KGF_NEO4J_PASSWORD only."),
    resume: bool = typer.Option(False, "--resume", help="Allow a non-empty target: finish an interrupted migration "
                                                       "(every write is a MERGE/upsert)."),
    batch: int = typer.Option(1000, "--batch", min=1, max=50000, help="Rows per read/write batch."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Copy a knowledge base to other stores (e.g. embedded -> Neo4j + Milvus, and back), then check the counts.

    Copies documents, chunks, entities with their class labels, mentions, relations with provenance, ingest runs
    and vectors with their metadata as stored: nothing is re-embedded. Exit code 1 when a count differs."""
    from rich.progress import Progress, TaskID, TextColumn, TimeElapsedColumn

    from ..bootstrap import build_graph_store, build_vector_store
    from ..migration import migrate
    from ..ontology.loader import load_ontology
    from ..settings import Settings

    opened: list[GraphStore | VectorStore] = []
    try:
        dst_spec = parse_spec(to)
        src_spec = parse_spec(source) if source else (ALIASES["servers"] if dst_spec == ALIASES["embedded"]
                                                       else ALIASES["embedded"])
        # values of different types (str, Path), checked by pydantic when Settings validates them
        overrides: dict[str, Any] = {k: v for k, v in {"milvus_uri": milvus_uri, "milvus_db": milvus_db,
                                                        "neo4j_uri": neo4j_uri}.items() if v is not None}
        if data_dir:
            overrides["data_dir"] = data_dir
        base = Settings(**overrides)
        src = side_settings(base, src_spec, base.data_dir)
        dst = side_settings(base, dst_spec, target_dir or base.data_dir)
        check_distinct(src, dst, src_spec, dst_spec)
        ontology = load_ontology(base.ontology_path)
        stores = []
        for side in (src, dst):
            side.data_dir.mkdir(parents=True, exist_ok=True)
            g = build_graph_store(side, ontology)
            opened.append(g)
            v = build_vector_store(side)
            opened.append(v)
            stores.append((g, v))
        (sg, sv), (dg, dv) = stores
        with Progress(TextColumn("[bold]migrate[/bold] {task.description}"), TextColumn("{task.completed} rows"),
                      TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
            tasks: dict[str, TaskID] = {}

            def tick(kind: str, n: int) -> None:
                if kind not in tasks:
                    tasks[kind] = bar.add_task(kind, total=None)
                bar.advance(tasks[kind], n)

            report = migrate(sg, sv, dg, dv, batch=batch, resume=resume, progress=tick)
    except KGFError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    finally:
        for handle in reversed(opened):
            handle.close()
    if as_json:
        console.print_json(json.dumps({"from": "+".join(src_spec), "to": "+".join(dst_spec), "ok": report.ok,
                                       "mismatches": report.mismatches, "source": report.source,
                                       "target": report.target, "copied": report.copied,
                                       "seconds": round(report.seconds, 2)}))
    else:
        t = Table(title=f"migrate {'+'.join(src_spec)} -> {'+'.join(dst_spec)} ({report.seconds:.1f} s)")
        for col in ("store", "what", "source", "target", ""):
            t.add_column(col, justify="right" if col in ("source", "target") else "left")
        for store in ("graph", "vectors"):
            for k in sorted(set(report.source[store]) | set(report.target[store])):
                a, b = report.source[store].get(k, 0), report.target[store].get(k, 0)
                t.add_row(store, k, str(a), str(b), "[green]ok[/green]" if a == b else "[red]differs[/red]")
        console.print(t)
    if not report.ok:
        err.print("[red]counts differ:[/red] " + "; ".join(report.mismatches) + " (run again with --resume)")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
