"""The one printer of `kgf`: the same typed result (service/results.py) prints the same way whether the data
directory was opened in this process (`KnowledgeBase`) or a running `kgf serve` answered (`Client`). `--json`
prints the result model itself: the API's response body."""
from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..service.results import AskResult, DeleteResult, DocumentInfo, IngestResult
from ..types import IngestRun

console = Console()
err = Console(stderr=True)


def print_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    console.print_json(json.dumps(data, default=str))


# -- ask ----------------------------------------------------------------------------------------------------
def stream_ask(items: Iterable[str | AskResult], question: str, out: Console = console) -> AskResult:
    """Print Q:, then the answer's pieces as they arrive, then the checked answer where it differs."""
    out.print(f"[bold]Q:[/bold] {escape(question)}")
    out.print("[bold]A:[/bold] ", end="")
    streamed: list[str] = []
    answer = None
    for item in items:
        if isinstance(item, AskResult):
            answer = item
            break
        streamed.append(item)
        out.out(item, end="", highlight=False)
        out.file.flush()
    out.print()
    if answer is None:
        raise RuntimeError("the answer stream ended without its answer")
    g = answer.grounding
    if g is not None and not g.passed and streamed:
        out.print("[bold red]Rejected:[/bold red] the generated text above is not supported by its sources "
                  f"({escape(g.reasons[0] if g.reasons else 'groundedness gate')}); it is withdrawn.")
    if answer.answer != "".join(streamed).strip():  # a fallback, or markers removed by the citation check
        label = "A (citations checked)" if answer.kind == "generated" else "A (extractive)"
        out.print(f"[bold]{label}:[/bold] {escape(answer.answer)}")
    if answer.note:
        out.print(f"[yellow]note:[/yellow] {escape(answer.note)}")
    if answer.model:
        u = answer.usage or {}
        out.print(f"[dim]model {answer.model}, prompt {answer.prompt_version}, tokens {u.get('prompt_tokens', 0)} "
                  f"prompt + {u.get('completion_tokens', 0)} completion[/dim]")
    out.print()
    return answer


def print_ask(res: AskResult, streamed: bool = False) -> None:
    """The answer (unless stream_ask printed it), its citations, query entities, graph evidence, chunks, timings."""
    if not streamed:
        console.print(f"[bold]Q:[/bold] {escape(res.question)}")
        if res.kind == "extractive":
            console.print("[dim]Extractive answer (no LLM configured): quoted from the sources.[/dim]")
        console.print(f"[bold]A:[/bold] {escape(res.answer)}\n")
    if res.abstained:  # nothing cited: the nearest sources, named as such
        console.print("[bold yellow]Not in the knowledge base.[/bold yellow] "
                      + ("Possibly related:" if res.related else "No related sources."))
        for r in res.related:
            console.print(f"  - {escape(r.title or r.doc_id)} (similarity {r.score:.2f}) doc {r.doc_id} "
                          f"chunk {r.chunk_id}")
    for n, c in enumerate(res.citations, 1):
        where = f"chars {c.start}-{c.end}" + (f", page {c.page}" if c.page else "")
        console.print(f"  [{n}] {escape(c.title)} ({where}) doc {c.doc_id} chunk {c.chunk_id}")
        console.print(f"      [dim]{escape(c.source)}[/dim]")
    if res.seeds:
        console.print("\n[bold]Query entities:[/bold] " + ", ".join(f"{s.name} ({s.label})" for s in res.seeds[:8]))
    if res.evidence:
        console.print("[bold]Graph evidence:[/bold]")
        for ev in res.evidence[:5]:
            console.print("  " + escape(" ".join(f"{a} -[{r}]-> {b}" if i == 0 else f"-[{r}]-> {b}"
                                                 for i, (a, r, b) in enumerate(ev.hops))))
    console.print("\n[dim]retrieved: " + escape(", ".join(f"{c.title} ({c.score:.3f})" for c in res.chunks)) + "[/dim]")
    console.print("[dim]timings ms: " + ", ".join(f"{k} {v:.1f}" for k, v in res.timings.items()) + "[/dim]")


# -- ingest, documents, delete ------------------------------------------------------------------------------
def print_ingest(res: IngestResult) -> None:
    runs = [j.run or {} for j in res.jobs]
    t = Table(title="ingest " + ", ".join(str(r.get("id") or j.id) for r, j in zip(runs, res.jobs)))
    for col in ("added", "replaced", "unchanged", "errors", "chunks", "entities", "relations"):
        t.add_column(col, justify="right")
    t.add_row(*map(str, (res.documents_added, res.documents_replaced, res.documents_unchanged, len(res.errors),
                         res.chunks, sum(int(r.get("entities", 0)) for r in runs),
                         sum(int(r.get("relations", 0)) for r in runs))))
    console.print(t)
    timings: dict[str, float] = {}
    for r in runs:
        for k, v in (r.get("timings") or {}).items():
            timings[k] = timings.get(k, 0.0) + float(v)
    if timings:
        console.print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    for e in res.errors:
        err.print(f"[yellow]skipped[/yellow] {escape(e.get('file', ''))}: {escape(e.get('reason', ''))}")


def print_documents(docs: Sequence[DocumentInfo]) -> None:
    t = Table(title=f"{len(docs)} documents")
    for col in ("id", "title", "source", "tenant", "chunks", "status"):
        t.add_column(col, overflow="fold")
    for d in docs:
        extra = d.model_extra or {}
        t.add_row(d.id, d.title or "", d.source or "", d.tenant or "", str(extra.get("chunk_count") or 0),
                  d.status or "")
    console.print(t)


def print_delete(res: DeleteResult) -> None:
    console.print(f"deleted {res.id}: {res.chunks} chunks, {res.orphaned_entities_removed} orphaned entities")


# -- the operator's views (local only) ----------------------------------------------------------------------
def print_stats(s: dict) -> None:
    t = Table(title="knowledge base")
    t.add_column("store")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in sorted(s["graph"].items(), key=lambda kv: (kv[0][0].islower(), kv[0])):
        t.add_row("graph", k, str(v))
    for k, v in s["vectors"].items():
        t.add_row("vectors", k, str(v))
    console.print(t)


def print_runs(rows: list[IngestRun]) -> None:
    t = Table(title="ingest runs")
    for col in ("id", "started", "model", "extractor", "ontology", "added", "errors"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r.id, str(r.started_at)[:19], r.embed_model, r.extractor, r.ontology_version,
                  str(r.documents_added), str(len(r.errors)))
    console.print(t)


def print_entity_hits(res: Any) -> None:
    """An EntitySearchResult: one line an entity, best first."""
    if not res.items:
        console.print(f"no entity matches {escape(res.q)!r}")
        return
    t = Table("match", "name", "class", "mentions", "id")
    for e in res.items:
        t.add_row(e.match, escape(e.name or ""), escape(e.label or ""), str(e.mentions), escape(e.id))
    console.print(t)
