"""`kgf llm check|usage` (`kgf ask --llm` streams through cli/printer.py)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import KGFError
from ..types import Completion

llm_app = typer.Typer(help="The LLM endpoint (any OpenAI-compatible server: vLLM, Ollama, NIM, TGI, LM Studio, OpenAI).",
                      no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _settings(data_dir, base_url, model):
    from ..settings import Settings

    kw = {k: v for k, v in {"data_dir": data_dir, "llm_base_url": base_url, "llm_model": model}.items() if v}
    return Settings(**kw)


@llm_app.command()
def check(
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Endpoint (default: $KGF_LLM_BASE_URL)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: $KGF_LLM_MODEL, else the first listed)."),
) -> None:
    """Test the endpoint: list its models, one completion and one streamed completion, with latency and tokens."""
    from ..bootstrap import build_llm

    try:
        settings = _settings(None, base_url, model)
        llm = build_llm(settings, ledger=False)
    except KGFError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    t = Table(title=f"LLM endpoint {llm.base_url}")
    for col in ("check", "result", "ms"):
        t.add_column(col, overflow="fold")
    msgs = [{"role": "user", "content": "Reply with the single word: ready"}]
    ok = True
    try:
        t0 = time.perf_counter()
        try:
            models = llm.list_models()
            t.add_row("models", ", ".join(models[:8]) or "(none listed)", f"{(time.perf_counter() - t0) * 1000:.0f}")
        except KGFError as e:
            t.add_row("models", f"[yellow]not listed[/yellow]: {escape(str(e))}", "")
        t.add_row("model used", llm.model, "")
        t0 = time.perf_counter()
        c = llm.complete(msgs, max_tokens=16)
        ms = f"{(time.perf_counter() - t0) * 1000:.0f}"
        if c.text.strip():
            t.add_row("completion", f"{escape(c.text.strip()[:60])!r} ({c.prompt_tokens}+{c.completion_tokens} "
                      f"tokens{', estimated' if c.usage_estimated else ''})", ms)
        else:  # an endpoint that answers nothing cannot answer questions: not ok
            ok = False
            t.add_row("[red]completion[/red]", f"empty (finish_reason {c.finish_reason}, {c.completion_tokens} "
                      "completion tokens): the model wrote nothing; check the model and its chat template", ms)
        t0, first, pieces = time.perf_counter(), None, 0
        for item in llm.stream(msgs, max_tokens=16):
            if isinstance(item, Completion):
                ms = f"{(time.perf_counter() - t0) * 1000:.0f}"
                if pieces and item.text.strip():
                    t.add_row("stream", f"{pieces} chunks, {item.completion_tokens} tokens; first after "
                              f"{(first or 0) * 1000:.0f} ms", ms)
                else:
                    ok = False
                    t.add_row("[red]stream[/red]", f"empty: {pieces} chunks with text (finish_reason "
                              f"{item.finish_reason}); the stream carried no answer", ms)
            elif item:
                pieces += 1
                first = first if first is not None else time.perf_counter() - t0
    except KGFError as e:
        ok = False
        t.add_row("[red]failed[/red]", escape(str(e)), "")
    finally:
        llm.close()
    console.print(t)
    if not ok:
        err.print("[red]failed[/red]: the endpoint does not give usable chat completions (see the table)")
        raise typer.Exit(1)
    console.print("[green]ok[/green]: the endpoint answers chat completions, plain and streamed")


@llm_app.command()
def usage(data_dir: Optional[Path] = typer.Option(None, "--data-dir", "-d", help="Data directory."),
          as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Tokens used per tenant (the ledger the token budget is checked against)."""
    from ..llm.ledger import TokenLedger

    settings = _settings(data_dir, None, None)
    path = settings.data_dir.expanduser().resolve() / "llm" / "usage.json"
    rows = TokenLedger(path, settings.llm_tenant_token_budget).usage() if path.exists() else {}
    if as_json:
        console.print_json(data=rows)
        return
    budget = settings.llm_tenant_token_budget
    t = Table(title=f"LLM tokens per tenant (budget: {budget or 'unlimited'})")
    for col in ("tenant", "requests", "prompt", "completion", "total", "left"):
        t.add_column(col, justify="right")
    for tenant, r in sorted(rows.items()):
        left = str(max(budget - r.get("total_tokens", 0), 0)) if budget else "-"
        t.add_row(tenant, *(str(r.get(k, 0)) for k in ("requests", "prompt_tokens", "completion_tokens", "total_tokens")), left)
    console.print(t)
