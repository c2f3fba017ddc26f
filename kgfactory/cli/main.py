"""`kgf`: the command line. Each command opens the data directory, does its work and closes it cleanly."""
from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import KGFError
from .options import DataDir

app = typer.Typer(help="kgfactory: GraphRAG over a semantic layer, offline by default.", no_args_is_help=True,
                  add_completion=False)
console = Console()
err = Console(stderr=True)



def sample_dir() -> Path:
    """The small corpus that ships inside the package."""
    return Path(__file__).resolve().parents[1] / "samples" / "corpus"


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level to stderr.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@contextmanager
def services(data_dir: Optional[Path], **overrides) -> Iterator:
    from ..bootstrap import build_services
    from ..settings import Settings

    from . import remote

    remote.refuse_if_served(data_dir)  # Milvus Lite: one process per data dir; a running server holds it
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    try:
        svc = build_services(Settings(**kwargs))
    except KGFError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    try:
        yield svc
    except KGFError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    finally:
        svc.close()


@app.command()
def ingest(
    paths: List[Path] = typer.Argument(None, help="Files or directories (recursive): .txt .md .html .pdf .json .jsonl"),
    sample: bool = typer.Option(False, "--sample", help="Ingest the sample corpus bundled with kgfactory."),
    tenant: str = typer.Option("default", help="Tenant the documents belong to."),
    tag: List[str] = typer.Option([], "--tag", "-t", help="Tag to attach (repeatable)."),
    vector_only: bool = typer.Option(False, "--vector-only", help="Skip entity extraction and graph facts."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the run record as JSON."),
) -> None:
    """Parse, chunk, embed and extract documents into the vector store and the graph."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    targets = [str(p) for p in (paths or [])] + ([str(sample_dir())] if sample else [])
    if not targets:
        err.print("[red]error:[/red] give at least one PATH, or --sample")
        raise typer.Exit(2)
    from . import remote

    if remote.ingest(data_dir, targets, tenant, tag, vector_only, as_json):  # `kgf serve` holds the data dir
        return
    with services(data_dir, extract=False if vector_only else None) as svc:
        with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
                      TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("ingest", total=None)
            run = svc.pipeline.ingest(targets, tenant=tenant, tags=tag,
                                      progress=lambda event, n: bar.advance(task, n))
        stats = _stats(svc)
    if as_json:
        console.print_json(run.model_dump_json())
        return
    t = Table(title=f"ingest run {run.id}")
    for col in ("added", "replaced", "unchanged", "errors", "chunks", "entities", "relations"):
        t.add_column(col, justify="right")
    t.add_row(*map(str, (run.documents_added, run.documents_replaced, run.documents_unchanged, len(run.errors),
                         run.chunks, run.entities, run.relations)))
    console.print(t)
    console.print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in run.timings.items()))
    for e in run.errors:
        err.print(f"[yellow]skipped[/yellow] {e.source}: {e.reason}")
    _print_stats(stats)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in quotes."),
    mode: str = typer.Option("hybrid", "--mode", "-m", help="vector, graph or hybrid."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="How many passages to retrieve (1-100)."),
    tenant: Optional[str] = typer.Option(None, help="Only this tenant's documents."),
    tag: List[str] = typer.Option([], "--tag", "-t", help="Only documents with this tag (repeatable)."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the answer and retrieval result as JSON."),
    llm: bool = typer.Option(False, "--llm", help="Generate the answer with the LLM at $KGF_LLM_BASE_URL (streamed); "
                             "falls back to the extractive answer, marked, when the endpoint is down."),
) -> None:
    """Answer a question from the knowledge base, with citations and the graph evidence used."""
    filters = {k: v for k, v in {"tenant": tenant, "tag": tag or None}.items() if v}
    from . import remote

    if remote.ask(data_dir, question, mode, top_k, tenant, tag, as_json):  # `kgf serve` holds the data dir
        return
    with services(data_dir, llm=True if llm else None) as svc:
        _ = svc.embedder.dim  # load the model first, so the timings below are the query's own
        result = svc.retriever.search(question, mode=mode, top_k=top_k, filters=filters or None)
        streamed = svc.llm is not None and not as_json
        if streamed:
            from .llm import stream_answer

            answer = stream_answer(svc.answerer, result, console)  # prints Q: and the tokens as they come
        else:
            answer = svc.answerer.answer(result)
    if as_json:
        console.print_json(json.dumps({"answer": answer.model_dump(mode="json"), "retrieval": result.model_dump(mode="json")}))
        return
    if not streamed:
        console.print(f"[bold]Q:[/bold] {answer.question}")
        if answer.kind == "extractive":
            console.print("[dim]Extractive answer (no LLM configured): quoted from the sources.[/dim]")
        console.print(f"[bold]A:[/bold] {escape(answer.text)}\n")
    for n, c in enumerate(answer.citations, 1):
        where = f"chars {c.start}-{c.end}" + (f", page {c.page}" if c.page else "")
        console.print(f"  [{n}] {c.title} ({where}) doc {c.doc_id} chunk {c.chunk_id}")
        console.print(f"      [dim]{c.source}[/dim]")
    if result.seeds:
        console.print("\n[bold]Query entities:[/bold] " + ", ".join(f"{s.name} ({s.label})" for s in result.seeds[:8]))
    if result.evidence:
        console.print("[bold]Graph evidence:[/bold]")
        for ev in result.evidence[:5]:
            console.print("  " + escape(" ".join(f"{a} -[{r}]-> {b}" if i == 0 else f"-[{r}]-> {b}"
                                                 for i, (a, r, b) in enumerate(ev.hops))))
    console.print("\n[dim]retrieved: " + ", ".join(f"{c.title} ({c.score:.3f})" for c in result.chunks) + "[/dim]")
    console.print("[dim]timings ms: " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()) + "[/dim]")


@app.command()
def delete(doc_id: str = typer.Argument(..., help="Document id (see `kgf documents`)."), data_dir: Optional[Path] = DataDir) -> None:
    """Remove a document and everything only it contributed (vectors, chunks, mentions, relations, orphans)."""
    from ..api.uploads import remove_copy

    with services(data_dir) as svc:
        doc = svc.graph.get_document(doc_id)
        rep = svc.pipeline.delete(doc_id)
        if rep.found and doc is not None:
            remove_copy(svc.settings.data_dir, doc, svc.graph)  # an API upload's file copy goes with it
    if not rep.found:
        err.print(f"[red]error:[/red] no document with id {doc_id}")
        raise typer.Exit(1)
    console.print(f"deleted {doc_id}: {rep.chunks} chunks, {rep.entities} orphaned entities")


@app.command()
def documents(tenant: Optional[str] = typer.Option(None, help="Only this tenant."), data_dir: Optional[Path] = DataDir,
              as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """List stored documents."""
    with services(data_dir) as svc:
        docs = svc.graph.list_documents(tenant=tenant)
    if as_json:
        console.print_json(json.dumps([asdict(d) for d in docs], default=str))
        return
    t = Table(title=f"{len(docs)} documents")
    for col in ("id", "title", "source", "tenant", "chunks", "status"):
        t.add_column(col, overflow="fold")
    for d in docs:
        t.add_row(d.id, d.title or "", d.source or "", d.tenant or "", str(d.chunk_count or 0), d.status or "")
    console.print(t)


@app.command()
def stats(data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Counts of nodes, relationships and vectors; documents not complete (pending, deleting) are shown apart."""
    with services(data_dir) as svc:
        s = _stats(svc)
    if as_json:
        console.print_json(json.dumps(s))
    else:
        _print_stats(s)


@app.command()
def runs(limit: int = typer.Option(10, help="How many recent runs."), data_dir: Optional[Path] = DataDir) -> None:
    """Recent ingest runs (lineage: versions, counts, errors)."""
    with services(data_dir) as svc:
        rows = svc.graph.list_runs(limit)
    t = Table(title="ingest runs")
    for col in ("id", "started", "model", "extractor", "ontology", "added", "errors"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r.id, r.started_at.isoformat()[:19], r.embed_model, r.extractor, r.ontology_version,
                  str(r.documents_added), str(len(r.errors)))
    console.print(t)


def _stats(svc) -> dict:
    """Counts of complete knowledge; documents a crash left pending (or a delete deleting) and their chunk
    vectors are shown apart. Vector counts are of distinct ids (exact, whatever the engine's own tally says)."""
    g = svc.graph.stats()
    vectors = {"chunks": svc.vectors.count("chunks", exact=True), "entities": svc.vectors.count("entities", exact=True)}
    for status in ("pending", "deleting"):
        if g.get(f"Document ({status})"):
            n = sum(len(svc.vectors.chunk_ids_for_document(d.id))
                    for d in svc.graph.list_documents(status=status))
            vectors["chunks"] -= n
            vectors[f"chunks ({status})"] = n
    return {"graph": g, "vectors": vectors}


def _print_stats(s: dict) -> None:
    t = Table(title="knowledge base")
    t.add_column("store")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in sorted(s["graph"].items(), key=lambda kv: (kv[0][0].islower(), kv[0])):
        t.add_row("graph", k, str(v))
    for k, v in s["vectors"].items():
        t.add_row("vectors", k, str(v))
    console.print(t)


from .serve import register as _register_serve  # noqa: E402  (kgf serve, kgf keys, kgf audit)

_register_serve(app)

from .llm import llm_app as _llm_app  # noqa: E402  (kgf llm check, kgf llm usage)

app.add_typer(_llm_app, name="llm")

from .migrate import register as _register_migrate  # noqa: E402  (kgf migrate --to neo4j+milvus)

_register_migrate(app)

from .ontology import register as _register_ontology  # noqa: E402  (kgf sparql, kgf ontology ...)

_register_ontology(app)

from .rdf_io import register as _register_rdf_io  # noqa: E402  (kgf export, kgf import)

_register_rdf_io(app)

if __name__ == "__main__":  # pragma: no cover
    app()
