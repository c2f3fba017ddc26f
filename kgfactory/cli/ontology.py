"""`kgf sparql` and `kgf ontology load|show|violations|validate|export`: the semantic layer from the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .options import DataDir, services
from .rdf_io import export

console = Console()
err = Console(stderr=True)

ontology_app = typer.Typer(help="The OWL ontology that shapes the graph: load, show, violations, SHACL validation.",
                           no_args_is_help=True)
SPARQL_FORMATS = ("table", "json", "xml", "csv", "tsv", "turtle", "ntriples")


def sparql(
    query: str = typer.Argument(..., help="A SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE); '-' reads stdin. "
                                          "Prefixes kgf:, kgfv:, prov:, dcterms:, rdfs:, skos:, schema: are predeclared."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json (SPARQL results JSON), xml, csv, tsv; "
                                                            "turtle or ntriples for CONSTRUCT/DESCRIBE."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds before the query is abandoned."),
    limit: int = typer.Option(10000, "--limit", help="Row cap (triples for CONSTRUCT/DESCRIBE)."),
    tenant: Optional[str] = typer.Option(None, help="Only this tenant's graph (default: every tenant)."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Run a read-only SPARQL query over the RDF view of the knowledge graph (updates are refused)."""
    if fmt not in SPARQL_FORMATS:
        err.print(f"[red]error:[/red] --format must be one of {', '.join(SPARQL_FORMATS)}")
        raise typer.Exit(2)
    text = sys.stdin.read() if query == "-" else query
    with services(data_dir) as svc:
        res = svc.rdf.query(text, tenant=tenant, timeout_s=timeout, max_rows=limit)
        if fmt == "table":
            if res.kind in ("construct", "describe"):
                fmt = "turtle"
            else:
                _table(res)
                return
        body, _ = res.serialize(fmt)
    sys.stdout.write(body.decode("utf-8") if isinstance(body, bytes) else body)
    if res.truncated:
        err.print(f"[yellow]truncated at {limit} rows (--limit)[/yellow]")


def _table(res) -> None:
    if res.kind == "ask":
        console.print("true" if res.boolean else "false")
        return
    t = Table(title=f"{len(res.rows)} rows{' (truncated, see --limit)' if res.truncated else ''} "
                    f"in {res.elapsed_ms:.1f} ms")
    for v in res.variables:
        t.add_column(v, overflow="fold")
    short = _shortener(res.prefixes)
    for row in res.rows:
        t.add_row(*[escape(short(x)) if x is not None else "" for x in row])
    console.print(t)


def _shortener(prefixes: dict[str, str]):
    import pyoxigraph as ox

    ordered = sorted(prefixes.items(), key=lambda kv: -len(kv[1]))

    def short(term) -> str:
        if isinstance(term, ox.NamedNode):
            for p, ns in ordered:
                if ns and term.value.startswith(ns):
                    return f"{p}:{term.value[len(ns):]}"
            return term.value
        if isinstance(term, ox.Literal):
            return term.value + (f"@{term.language}" if term.language else "")
        return str(term)

    return short


@ontology_app.command("show")
def show(data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """The ontology in force: version, source, class hierarchy, object properties with domain and range."""
    from ..ontology.evolution import read_graph_config

    with services(data_dir) as svc:
        o = svc.ontology
        cfg = read_graph_config(svc.graph)
    if as_json:
        console.print_json(json.dumps({"iri": o.iri, "version": o.version, "source": o.source,
                                       "content_hash": o.content_hash, "namespace": o.namespace,
                                       "classes": {n: {"parents": c.parents, "label": c.label} for n, c in o.classes.items()},
                                       "object_properties": {n: p.model_dump() for n, p in o.object_properties.items()},
                                       "graph_config": cfg}, default=str))
        return
    console.print(f"[bold]{escape(o.iri or '(no ontology IRI)')}[/bold] version [bold]{escape(o.version)}[/bold]")
    console.print(f"source {escape(o.source)}\nnamespace {escape(o.namespace)}; {len(o.classes)} classes, "
                  f"{len(o.object_properties)} object properties, {len(o.datatype_properties)} datatype properties, "
                  f"{len(o.individuals)} named individuals")
    stored = cfg["config"].get("ontology_version")
    if stored and stored != o.version:
        console.print(f"[yellow]the graph was last written with ontology version {escape(str(stored))}[/yellow]")
    t = Table(title="classes (node labels = class + superclasses)")
    t.add_column("class")
    t.add_column("superclasses")
    t.add_column("NER labels")
    for name in sorted(o.classes):
        t.add_row(name, " > ".join(o.ancestors(name)), ", ".join(o.classes[name].ner_labels))
    console.print(t)
    t = Table(title="object properties (relationship types)")
    for col in ("property", "domain", "range", "flags"):
        t.add_column(col)
    for name, p in sorted(o.object_properties.items()):
        flags = [f for f, on in (("symmetric", p.symmetric), ("transitive", p.transitive)) if on]
        if p.inverse_of:
            flags.append(f"inverse of {p.inverse_of}")
        t.add_row(name, " | ".join(p.domain) or "any", " | ".join(p.range) or "any", ", ".join(flags))
    console.print(t)


@ontology_app.command("load")
def load(
    file: Path = typer.Argument(..., help="OWL ontology: .ttl, .owl/.rdf/.xml (RDF/XML), .jsonld, .nt, .n3"),
    migrate: bool = typer.Option(False, "--migrate", help="Retype entities of removed classes to their nearest "
                                                          "surviving superclass; quarantine edges that no longer fit."),
    quarantine: bool = typer.Option(False, "--quarantine", help="Retype entities of removed classes to the fallback "
                                                                "class and quarantine them and misfit edges."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the change report as JSON."),
) -> None:
    """Check an ontology and make it current for this data directory, reporting stored facts that no longer fit.

    A file that does not parse or check changes nothing. If stored entities or edges no longer fit, nothing changes
    unless --migrate or --quarantine says how to bring them in line."""
    from ..ontology.evolution import activate, apply_change, check_change, write_graph_config
    from ..ontology.loader import load_ontology

    if migrate and quarantine:
        err.print("[red]error:[/red] choose one of --migrate and --quarantine")
        raise typer.Exit(2)
    with services(data_dir, create=True) as svc:
        new = load_ontology(file)  # OntologyError (file, line, reason) -> exit 2, previous ontology stays
        report = check_change(svc.graph, svc.ontology, new)
        if not report.fits and not (migrate or quarantine):
            report.applied = ""
        else:
            if not report.fits or report.relabel:
                apply_change(svc.graph, svc.quarantine, svc.ontology, new, report,
                             "quarantine" if quarantine else "migrate")
            else:
                report.applied = "activated"
            activate(svc.settings.data_dir, new, file)
            write_graph_config(svc.graph, new)
            report.applied = report.applied or "activated"
    if as_json:
        console.print_json(json.dumps(report.as_dict(), default=str))
    else:
        _print_report(report)
    if not report.applied:
        raise typer.Exit(1)


def _print_report(rep) -> None:
    console.print(f"ontology {escape(rep.old_version)} -> {escape(rep.new_version)}: "
                  f"{len(rep.nodes)} entities and {len(rep.edges)} typed edges no longer fit; "
                  f"{rep.relabel} entities change labels")
    if rep.nodes:
        t = Table(title="entities whose class is gone")
        for col in ("entity", "class", "migrate to", "tenant"):
            t.add_column(col)
        for n in rep.nodes[:50]:
            t.add_row(escape(str(n.get("name"))), n["class"], n["migrate_to"], str(n.get("tenant")))
        console.print(t)
    if rep.edges:
        t = Table(title="typed edges that no longer fit")
        for col in ("source", "edge", "target", "why"):
            t.add_column(col, overflow="fold")
        for e in rep.edges[:50]:
            t.add_row(escape(str(e.get("source_name"))), e["type"], escape(str(e.get("target_name"))), escape(e["reason"]))
        console.print(t)
    if rep.applied:
        console.print(f"[green]{rep.applied}[/green]: ontology {escape(rep.new_version)} is now in force")
    else:
        console.print("[yellow]not loaded[/yellow]: the previous ontology stays in force. Re-run with --migrate or "
                      "--quarantine to bring the stored facts in line.")


@ontology_app.command("violations")
def violations(
    tenant: Optional[str] = typer.Option(None, help="Only this tenant."),
    doc: Optional[str] = typer.Option(None, "--doc", help="Only this document id."),
    limit: int = typer.Option(100, help="How many rows."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Edges (and, after an ontology change, entities) the ontology refused: quarantined, not in the graph."""
    with services(data_dir) as svc:
        rows = svc.quarantine.list(tenant=tenant, doc_id=doc, limit=limit)
        total = svc.quarantine.count(tenant=tenant, doc_id=doc)
    if as_json:
        console.print_json(json.dumps({"total": total, "rows": rows}))
        return
    console.print(f"[bold]quarantine: {total} rows[/bold]" + (f" (first {limit})" if total > limit else ""))
    for r in rows:
        what = escape(f"{r['source_name']} ({r['source_class']})")
        if r["kind"] == "edge":
            what += f" -[{r['type']}]-> " + escape(f"{r['target_name']} ({r['target_class']})")
        console.print(f"{r['kind']:<5} {what}", soft_wrap=True)
        console.print(f"      [dim]{escape(r['reason'])}; doc {r['doc_id'] or '-'}, ontology {escape(r['ontology_version'])}, "
                      f"{r['origin']}[/dim]", soft_wrap=True)


@ontology_app.command("validate")
def validate(
    ontology_file: Optional[Path] = typer.Option(None, "--ontology", help="Check against this ontology's shapes "
                                                                           "instead of the one in force."),
    tenant: Optional[str] = typer.Option(None, help="Only this tenant's graph."),
    limit: int = typer.Option(50, help="How many violations to print."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """SHACL validation (pyshacl) of the RDF view against shapes derived from the ontology."""
    from ..ontology.loader import load_ontology
    from ..ontology.shacl import validate as run

    with services(data_dir) as svc:
        onto = load_ontology(ontology_file) if ontology_file else None
        report = run(svc.rdf, onto, tenant=tenant)
    if as_json:
        console.print_json(json.dumps({"conforms": report.conforms, "results": report.results,
                                       "shapes": report.shapes, "triples": report.triples}))
    else:
        console.print(escape(report.text(limit)))
    if not report.conforms:
        raise typer.Exit(1)


# `kgf ontology export` is `kgf export` (the RDF view out), kept under the ontology commands too
ontology_app.command("export")(export)


def register(app: typer.Typer) -> None:
    app.command("sparql")(sparql)
    app.add_typer(ontology_app, name="ontology")
