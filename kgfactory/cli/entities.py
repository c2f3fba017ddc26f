"""`kgf entities search NAME`: the explorer's type-ahead from the command line (exact, prefix, then fuzzy matches
on entity names and aliases), in-process or through the `kgf serve` that holds the data directory."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import DataDir

entities_app = typer.Typer(help="Find entities by name.", no_args_is_help=True)


@entities_app.command("search")
def search(q: str = typer.Argument(..., help="Part of a name or alias (1-200 characters)."),
           limit: int = typer.Option(10, help="At most this many entities (1-50)."),
           label: Optional[str] = typer.Option(None, help="Only entities of this ontology class or a subclass."),
           tenant: Optional[str] = typer.Option(None, help="Tenant (default: $KGF_TENANT or 'default'; through a "
                                                "server: the key's)."),
           data_dir: Optional[Path] = DataDir,
           as_json: bool = typer.Option(False, "--json", help="JSON output (the API's response body).")) -> None:
    """Entities whose name or an alias matches NAME: exact, then prefix, then near spellings."""
    from . import printer
    from .main import knowledge_base

    with knowledge_base(data_dir, tenant) as (kb, _):
        res = kb.entity_search(q, limit=limit, label=label)
    if as_json:
        printer.print_json(res)
    else:
        printer.print_entity_hits(res)


def register(app: typer.Typer) -> None:
    app.add_typer(entities_app, name="entities")
