"""`kgf`: the command line. Each command opens the data directory, does its work and closes it cleanly."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

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
def services(data_dir: Optional[Path], _handle: bool = True, **overrides) -> Iterator:
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
        if not _handle:  # the caller prints it (knowledge_base)
            raise
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    finally:
        svc.close()


@contextmanager
def knowledge_base(data_dir: Optional[Path], tenant: Optional[str] = None, **overrides) -> Iterator[tuple]:
    """(kb, url): a `KnowledgeBase` over the data directory (url None), or a `kgfactory.sdk.Client` for the
    `kgf serve` that holds it (url its address). Both take the same calls and return the same typed results;
    errors print as `error: ...` and exit 2 (a missing document or entity: exit 1)."""
    from ..sdk import APIError, NotFoundError
    from ..sdk.local import KnowledgeBase

    from . import remote

    info = remote.server_for(data_dir)
    try:
        if info:
            with remote.client(info, tenant) as c:
                yield c, info["url"]
        else:
            with services(data_dir, _handle=False, **overrides) as svc:
                yield KnowledgeBase(svc, tenant=tenant, own=False), None
    except NotFoundError as e:
        err.print(f"[red]error:[/red] {escape(e.message)}")
        raise typer.Exit(1)
    except APIError as e:
        hint = " (set KGF_API_KEY)" if e.status == 401 else ""
        where = f"server said {e.status}: " if info else ""
        err.print(f"[red]error:[/red] {where}{escape(e.message)}{hint}")
        raise typer.Exit(2)
    except KGFError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)


TenantOpt = typer.Option(None, help="Tenant (default: $KGF_TENANT or 'default'; through a server: the key's).")


@app.command()
def ingest(
    paths: List[Path] = typer.Argument(None, help="Files or directories (recursive): .txt .md .html .pdf .json .jsonl"),
    sample: bool = typer.Option(False, "--sample", help="Ingest the sample corpus bundled with kgfactory."),
    tenant: Optional[str] = typer.Option(None, help="Tenant the documents belong to (default: $KGF_TENANT or "
                                         "'default'; through a server: the key's)."),
    tag: List[str] = typer.Option([], "--tag", "-t", help="Tag to attach (repeatable)."),
    vector_only: bool = typer.Option(False, "--vector-only", help="Skip entity extraction and graph facts."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the ingest result as JSON."),
) -> None:
    """Parse, chunk, embed and extract documents into the vector store and the graph."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import printer

    targets = [str(p) for p in (paths or [])] + ([str(sample_dir())] if sample else [])
    if not targets:
        err.print("[red]error:[/red] give at least one PATH, or --sample")
        raise typer.Exit(2)
    with knowledge_base(data_dir, tenant, extract=False if vector_only else None) as (kb, url):
        if url and vector_only:
            err.print("[red]error:[/red] --vector-only is a server setting while `kgf serve` runs (KGF_EXTRACT=false)")
            raise typer.Exit(2)
        if url:
            err.print(f"[dim]ingesting through the server at {url}[/dim]")
        with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
                      TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
            task = bar.add_task("ingest", total=None)
            res = kb.ingest(targets, tags=tag, progress=lambda p: bar.update(task, completed=p.documents_processed))
        stats = None if url else kb.service.stats()
    if as_json:
        printer.print_json(res)
    else:
        printer.print_ingest(res)
        if stats is not None:
            printer.print_stats(stats)
    if not res.ok:
        raise typer.Exit(1)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in quotes."),
    mode: str = typer.Option("hybrid", "--mode", "-m", help="vector, graph or hybrid."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="How many passages to retrieve (1-100)."),
    tenant: Optional[str] = TenantOpt,
    tag: List[str] = typer.Option([], "--tag", "-t", help="Only documents with this tag (repeatable)."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON (the API's /v1/query body)."),
    llm: bool = typer.Option(False, "--llm", help="Generate the answer with the LLM at $KGF_LLM_BASE_URL (streamed); "
                             "falls back to the extractive answer, marked, when the endpoint is down."),
) -> None:
    """Answer a question from the knowledge base, with citations and the graph evidence used."""
    from . import printer

    with knowledge_base(data_dir, tenant, llm=True if llm else None) as (kb, url):
        if url:
            err.print(f"[dim]answered by the server at {url}[/dim]")
        else:
            _ = kb.services.embedder.dim  # load the model first, so the timings are the query's own
        streamed = llm and not as_json
        if streamed:
            res = printer.stream_ask(kb.ask_stream(question, mode=mode, top_k=top_k, tags=tag or None), question)
        else:
            res = kb.ask(question, mode=mode, top_k=top_k, tags=tag or None)
    if as_json:
        printer.print_json(res)
    else:
        printer.print_ask(res, streamed=streamed)


@app.command()
def delete(doc_id: str = typer.Argument(..., help="Document id (see `kgf documents`)."),
           tenant: Optional[str] = TenantOpt, data_dir: Optional[Path] = DataDir) -> None:
    """Remove a document and everything only it contributed (vectors, chunks, mentions, relations, orphans)."""
    from . import printer

    with knowledge_base(data_dir, tenant) as (kb, _):
        res = kb.delete(doc_id)
    if not res.deleted:
        err.print(f"[red]error:[/red] no document with id {doc_id}")
        raise typer.Exit(1)
    printer.print_delete(res)


@app.command()
def documents(tenant: Optional[str] = TenantOpt, data_dir: Optional[Path] = DataDir,
              as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """List a tenant's stored documents."""
    from . import printer

    with knowledge_base(data_dir, tenant) as (kb, _):
        docs = kb.documents()
    if as_json:
        printer.print_json(docs)
    else:
        printer.print_documents(docs)


@app.command()
def stats(data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Counts of nodes, relationships and vectors of every tenant; documents not complete (pending, deleting)
    are shown apart."""
    from . import printer

    with services(data_dir) as svc:
        s = _stats(svc)
    if as_json:
        printer.print_json(s)
    else:
        printer.print_stats(s)


@app.command()
def runs(limit: int = typer.Option(10, help="How many recent runs."), data_dir: Optional[Path] = DataDir) -> None:
    """Recent ingest runs of every tenant (lineage: versions, counts, errors)."""
    from ..service.knowledge import KnowledgeService

    from . import printer

    with services(data_dir) as svc:
        rows = KnowledgeService(svc).runs(limit)
    printer.print_runs(rows)


def _stats(svc) -> dict:
    """The whole data directory's counts (service/documents.py: Documents.stats)."""
    from ..service.knowledge import KnowledgeService

    return KnowledgeService(svc).stats()


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
