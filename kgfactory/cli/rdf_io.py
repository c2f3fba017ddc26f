"""`kgf export` and `kgf import`: the knowledge graph as RDF out, ontology-typed RDF instance data in."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from .options import DataDir, services

console = Console()
err = Console(stderr=True)
EXPORT_FORMATS = ("turtle", "jsonld", "ntriples", "nquads", "trig")


def export(
    fmt: str = typer.Option("turtle", "--format", "-f", help="turtle, jsonld or ntriples (nquads, trig keep the "
                                                             "per-tenant named graphs)."),
    doc: Optional[str] = typer.Option(None, "--doc", help="Only what this document contributed."),
    tenant: Optional[str] = typer.Option(None, help="Only this tenant's graph (default: every tenant)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Export the RDF view: entities typed by the ontology, typed relations, and their provenance."""
    if fmt not in EXPORT_FORMATS:
        err.print(f"[red]error:[/red] --format must be one of {', '.join(EXPORT_FORMATS)}")
        raise typer.Exit(2)
    with services(data_dir) as svc:
        body = svc.rdf.export(fmt, tenant=tenant, doc_id=doc)
    if out is None:
        sys.stdout.write(body.decode("utf-8"))
    else:
        out.write_bytes(body)
        err.print(f"wrote {len(body)} bytes to {escape(str(out))}")


def import_(
    file: Path = typer.Argument(..., help="RDF file of instance data typed with the ontology's classes."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="turtle, jsonld, ntriples, nquads, trig, xml "
                                                                   "(default: from the file suffix)."),
    tenant: str = typer.Option("default", help="Tenant the imported entities and relations belong to."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="JSON report."),
) -> None:
    """Import RDF (like n10s.rdf.import): typed resources become entities, object-property triples typed
    relations (domain/range misfits go to the quarantine), all with provenance "imported"."""
    from ..ontology.rdf_import import import_rdf

    with services(data_dir, create=True) as svc:
        rep = import_rdf(svc, file, fmt, tenant)
    if as_json:
        console.print_json(json.dumps(rep.as_dict()))
    else:
        console.print(f"imported {escape(rep.file)} (run {rep.run_id}): {rep.entities} entities, "
                      f"{rep.relations} relations, {rep.quarantined} quarantined, {len(rep.errors)} errors "
                      f"from {rep.triples} triples in {rep.seconds}s")
        for e in rep.errors[:50]:
            err.print(f"[yellow]skipped[/yellow] {escape(e.source)}: {escape(e.reason)}", soft_wrap=True)
        if len(rep.errors) > 50:
            err.print(f"... and {len(rep.errors) - 50} more (--json lists all)")
    if rep.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)
