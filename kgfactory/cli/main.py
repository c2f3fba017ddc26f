"""`kgf`: the command line. Each command opens the data directory, does its work and closes it cleanly."""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import KGFError
from .errors import EXIT_CODES, FAILED, REFUSED, Group, describe, fail, flags_read_as_flags, settings
from .options import DataDir, require_knowledge_base

flags_read_as_flags()
app = typer.Typer(help="kgfactory: GraphRAG over a semantic layer, offline by default.\n\n" + EXIT_CODES,
                  no_args_is_help=True, add_completion=False, cls=Group)
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
def services(data_dir: Optional[Path], create: bool = False, **overrides) -> Iterator:
    """The data directory's services, closed on the way out. Without `create` (read-only commands) a directory
    that holds no knowledge base is refused rather than made. Errors end as `error: ...` (errors.Group)."""
    from ..bootstrap import build_services

    from . import remote

    remote.refuse_if_served(data_dir)  # Milvus Lite: one process per data dir; a running server holds it
    if not create:
        require_knowledge_base(data_dir)
    svc = build_services(settings(data_dir, **overrides))
    try:
        yield svc
    finally:
        svc.close()


@contextmanager
def knowledge_base(data_dir: Optional[Path], tenant: Optional[str] = None, create: bool = False,
                   **overrides) -> Iterator[tuple]:
    """(kb, url): a `KnowledgeBase` over the data directory (url None), or a `kgfactory.sdk.Client` for the
    `kgf serve` that holds it (url its address). Both take the same calls and return the same typed results;
    errors print as one `error: ...` line (a server's with its HTTP status) and exit by errors.EXIT_CODES."""
    from ..sdk.local import KnowledgeBase

    from . import remote

    info = remote.server_for(data_dir)
    try:
        if info:
            with remote.client(info, tenant) as c:
                yield c, info["url"]
        else:
            with services(data_dir, create=create, **overrides) as svc:
                yield KnowledgeBase(svc, tenant=tenant, own=False), None
    except KGFError as e:
        known = describe(e, remote=bool(info))
        if known is None:
            raise
        fail(*known)


def documents_to_do(files: List[Path]) -> int:
    """How many documents the files hold, for the progress bar's total: one a file, one a record of a .json or
    .jsonl corpus (parsed here for the count: a cheap pass next to embedding them)."""
    from ..ingest.parsers import iter_documents

    n = 0
    for f in files:
        n += sum(1 for _ in iter_documents([f])) if f.suffix.lower() in (".json", ".jsonl") else 1
    return n


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
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (parse, chunk, embed and "
                               "spaCy on Ray; server stores only; the [ray] extra)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster for --engine ray (e.g. "
                                              "ray://head:10001); default $KGF_RAY_ADDRESS, else a local Ray."),
) -> None:
    """Parse, chunk, embed and extract documents into the vector store and the graph.

    A missing or unsupported path stops the run before anything is written; errors inside files are listed.

    Exit code 1 when any file was not ingested (missing, unsupported, unreadable, a record refused)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from ..service.limits import SUPPORTED_LIST
    from ..service.walk import expand
    from . import printer

    targets = [str(p) for p in (paths or [])] + ([str(sample_dir())] if sample else [])
    if not targets:
        fail("give at least one PATH, or --sample", REFUSED)
    settings(data_dir)  # a bad setting is named before the paths are looked at
    files, bad = expand(targets)
    if len(bad) == 1:
        fail(f"{bad[0][0]}: {bad[0][1]} (nothing ingested)")
    if bad:
        for p, reason in bad:
            err.print(f"[red]error:[/red] {escape(f'{p}: {reason}')}", soft_wrap=True)
        fail(f"nothing ingested: {len(bad)} of the paths given cannot be read")
    if not files:
        fail(f"nothing to ingest: no supported files in {', '.join(targets)} (supported: {SUPPORTED_LIST})")
    with knowledge_base(data_dir, tenant, create=True, extract=False if vector_only else None) as (kb, url):
        if url and vector_only:
            fail("--vector-only is a server setting while `kgf serve` runs (KGF_EXTRACT=false)", REFUSED)
        if url and (engine != "local" or ray_address):
            fail(f"--engine ray runs the ingest from this process, not through the `kgf serve` at {url}: "
                 "stop it, or ingest through it without --engine", REFUSED)
        if url:
            err.print(f"[dim]ingesting through the server at {url}[/dim]")
        quiet = as_json or not err.is_terminal
        total = 0 if quiet else documents_to_do(files)
        with Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("documents"),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                      TextColumn("[dim]{task.fields[stage]}"), console=err, transient=True, disable=quiet) as bar:
            task = bar.add_task("ingest", total=total, rate="", stage="")
            started = time.monotonic()

            def progress(p) -> None:  # IngestProgress: locally as documents are written, remotely as polled
                secs = time.monotonic() - started
                rate = f"{p.documents_processed / secs:,.1f} docs/s" if secs > 1 else ""
                bar.update(task, completed=p.documents_processed, total=max(total, p.documents_processed),
                           rate=rate, stage=f"limited by {p.stage}" if p.stage else "")

            res = kb.ingest(targets, tags=tag, progress=progress, **(
                {"engine": engine, "ray_address": ray_address} if engine != "local" or ray_address else {}))
        stats = None if url else kb.service.stats()
    if as_json:
        printer.print_json(res)
    else:
        printer.print_ingest(res)
        if stats is not None:
            printer.print_stats(stats)
    if not res.ok or res.errors:
        raise typer.Exit(FAILED)


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
        fail(f"no document with id {doc_id}")
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

from .reindex import register as _register_reindex  # noqa: E402  (kgf reindex)

_register_reindex(app)

from .ontology import register as _register_ontology  # noqa: E402  (kgf sparql, kgf ontology ...)

_register_ontology(app)

from .rdf_io import register as _register_rdf_io  # noqa: E402  (kgf export, kgf import)

_register_rdf_io(app)

from .entities import register as _register_entities  # noqa: E402  (kgf entities search)

_register_entities(app)

if __name__ == "__main__":  # pragma: no cover
    app()
