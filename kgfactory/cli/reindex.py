"""`kgf reindex`: re-embed the stored chunks and entities with the configured embedder (service/reindex.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .options import DataDir


def register(app: typer.Typer) -> None:
    @app.command()
    def reindex(data_dir: Optional[Path] = DataDir,
                as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
        """Re-embed every stored chunk and entity name with the configured embedder (KGF_EMBED_MODEL,
        KGF_EMBED_BACKEND), for every tenant, and record it with the vector collections.

        Needed after changing the embedding backend or model: a collection refuses queries embedded by another.
        Nothing is re-extracted; ids and counts stay as they are. The new vectors go into new collections that
        replace the old ones only when complete, so an interrupted run leaves the knowledge base as it was.
        Stop `kgf serve` first (it holds the data directory)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from . import printer
        from .main import err, fail, knowledge_base

        with knowledge_base(data_dir) as (kb, url):
            if url:
                fail(f"`kgf serve` at {url} holds this data directory: stop it, then run `kgf reindex`")
            quiet = as_json or not err.is_terminal
            with Progress(TextColumn("[bold]reindex {task.fields[kind]}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, transient=True, disable=quiet) as bar:
                tasks: dict[str, Any] = {}

                def progress(kind: str, done: int, total: int) -> None:
                    if kind not in tasks:
                        tasks[kind] = bar.add_task(kind, total=total, kind=kind)
                    bar.update(tasks[kind], completed=done, total=total)

                res = kb.reindex(progress)
        if as_json:
            printer.print_json(res)
        else:
            e = res.embedder
            typer.echo(f"reindexed {res.chunks} chunks and {res.entities} entities with {e['model']} on "
                       f"{e['backend']} ({e['dim']}-dim)")
