"""When `kgf serve` holds the data directory, `kgf ask` and `kgf ingest` go through its HTTP API.

Milvus Lite lets one process open a data directory. The server writes `<data_dir>/api/server.json`; these
commands find it, and send the request with the key in $KGF_API_KEY (none needed in open mode). Other
commands (delete, documents, stats, runs) stop with a message naming the server and the API route to use.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)


def _data_dir(data_dir: Optional[Path]) -> Path:
    from ..settings import Settings

    return (data_dir or Settings().data_dir).expanduser().resolve()


def server_for(data_dir: Optional[Path]) -> dict | None:
    from ..api.serverfile import running_server

    return running_server(_data_dir(data_dir))


def refuse_if_served(data_dir: Optional[Path]) -> None:
    info = server_for(data_dir)
    if info:
        err.print(f"[red]error:[/red] `kgf serve` (pid {info['pid']}) holds this data directory; use its API at "
                  f"{info['url']} (see {info['url']}/docs), or stop the server first. `kgf ask` and `kgf ingest` "
                  "go through it automatically.")
        raise typer.Exit(2)


def _client(info: dict):
    import httpx

    key = os.environ.get("KGF_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=info["url"], headers=headers, timeout=120.0)


def _check(r) -> dict:
    if r.status_code >= 400:
        try:
            msg = r.json()["error"]["message"]
        except Exception:
            msg = r.text[:300]
        hint = " (set KGF_API_KEY)" if r.status_code == 401 else ""
        err.print(f"[red]error:[/red] server said {r.status_code}: {escape(msg)}{hint}")
        raise typer.Exit(2)
    return r.json()


def _tenant_matches(c, tenant: Optional[str]) -> None:
    if tenant is None:
        return
    me = _check(c.get("/v1/whoami"))
    if me["tenant"] != tenant:
        err.print(f"[red]error:[/red] --tenant {tenant} but the server scopes this key to tenant {me['tenant']!r}; "
                  "use a key of that tenant (KGF_API_KEY)")
        raise typer.Exit(2)


def ask(data_dir, question: str, mode: str, top_k: int, tenant: Optional[str], tags: list[str], as_json: bool) -> bool:
    """True when a server answered (printed here); False when no server runs for the data dir."""
    info = server_for(data_dir)
    if not info:
        return False
    body = {"question": question, "mode": mode, "top_k": top_k}
    if tags:
        body["filters"] = {"tag": tags}
    with _client(info) as c:
        _tenant_matches(c, tenant)
        res = _check(c.post("/v1/query", json=body))
    if as_json:
        console.print_json(data=res)
        return True
    err.print(f"[dim]answered by the server at {info['url']}[/dim]")
    console.print(f"[bold]Q:[/bold] {escape(res['question'])}")
    if res["kind"] == "extractive":
        console.print("[dim]Extractive answer (no LLM configured): quoted from the sources.[/dim]")
    console.print(f"[bold]A:[/bold] {escape(res['answer'])}\n")
    for n, ci in enumerate(res["citations"], 1):
        console.print(f"  [{n}] {escape(ci['title'])} (chars {ci['start']}-{ci['end']}) doc {ci['doc_id']}")
    return True


def ingest(data_dir, targets: list[str], tenant: str, tags: list[str], vector_only: bool, as_json: bool) -> bool:
    info = server_for(data_dir)
    if not info:
        return False
    from ..ingest.parsers import SUPPORTED_SUFFIXES

    if vector_only:
        err.print("[red]error:[/red] --vector-only is a server setting while `kgf serve` runs (KGF_EXTRACT=false)")
        raise typer.Exit(2)
    files: list[Path] = []
    for t in targets:
        p = Path(t)
        files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES) if p.is_dir() else [p]
    names = [f.name for f in files]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        err.print(f"[red]error:[/red] the server names uploads by file name; these appear twice: {', '.join(sorted(dupes))}")
        raise typer.Exit(2)
    with _client(info) as c:
        _tenant_matches(c, tenant if tenant != "default" else None)
        handles = [("files", (f.name, f.open("rb"))) for f in files]
        try:
            job = _check(c.post("/v1/documents", files=handles, data={"tags": tags}))
        finally:
            for _, (_, fh) in handles:
                fh.close()
        err.print(f"[dim]ingest job {job['id']} on the server at {info['url']}[/dim]")
        while job["state"] in ("queued", "running"):
            time.sleep(0.5)
            job = _check(c.get(f"/v1/jobs/{job['id']}"))
    if as_json:
        console.print_json(data=job)
    else:
        run = job.get("run") or {}
        console.print(f"job {job['id']}: {job['state']}; added {run.get('documents_added', 0)}, replaced "
                      f"{run.get('documents_replaced', 0)}, unchanged {run.get('documents_unchanged', 0)}, "
                      f"chunks {run.get('chunks', 0)}, entities {run.get('entities', 0)}")
        for e in job["errors"]:
            err.print(f"[yellow]skipped[/yellow] {escape(e['file'])}: {escape(e['reason'])}")
        if job.get("error"):
            err.print(f"[red]error:[/red] {escape(job['error'])}")
    if job["state"] != "succeeded":
        raise typer.Exit(1)
    return True
