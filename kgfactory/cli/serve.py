"""`kgf serve`, `kgf keys create|list|revoke`, `kgf audit`: the HTTP server and its access control."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .options import DataDir

console = Console()
err = Console(stderr=True)

keys_app = typer.Typer(help="API keys: each maps to one tenant and roles (reader, analyst, ingester, admin).",
                       no_args_is_help=True)


def _settings(data_dir: Optional[Path], **kw):
    from ..settings import Settings

    if data_dir is not None:
        kw["data_dir"] = data_dir
    s = Settings(**{k: v for k, v in kw.items() if v is not None})
    s.data_dir = s.data_dir.expanduser().resolve()
    return s


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access-log lines (already JSON) are embedded as fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname, "logger": record.name}
        msg = record.getMessage()
        try:
            parsed = json.loads(msg)
            out.update(parsed if isinstance(parsed, dict) else {"msg": msg})
        except ValueError:
            out["msg"] = msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def serve(
    host: Optional[str] = typer.Option(None, help="Bind address (default $KGF_API_HOST or 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default $KGF_API_PORT or 8765)."),
    data_dir: Optional[Path] = DataDir,
    open_mode: bool = typer.Option(False, "--open", help="No API keys: every caller is an admin of KGF_TENANT. Local use only."),
    log_format: str = typer.Option("json", "--log-format", help="json (one object per line) or text."),
) -> None:
    """Run the HTTP API (uvicorn). It holds the data directory: `kgf ask`/`kgf ingest` then go through it."""
    import uvicorn

    from ..api import create_app
    from ..api.keys import KeyStore, keystore_path
    from ..api.serverfile import running_server

    s = _settings(data_dir, api_host=host, api_port=port, api_open=True if open_mode else None)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    other = running_server(s.data_dir)  # a stale file (its server died) is removed here, with a log line
    if other:
        err.print(f"[red]error:[/red] a server (pid {other['pid']}) already serves {s.data_dir} at {other['url']}")
        raise typer.Exit(2)
    if not s.api_open:
        ks = KeyStore(keystore_path(s.data_dir, s.key_store_path))
        n = sum(1 for k in ks.list() if not k["revoked_at"])
        ks.close()
        if n == 0:
            err.print("[yellow]warning:[/yellow] no API keys yet: every request will get 401. Create one with "
                      "`kgf keys create --tenant default --role admin`, or run `kgf serve --open` for local use.")
    url = f"http://{'127.0.0.1' if s.api_host in ('0.0.0.0', '::') else s.api_host}:{s.api_port}"
    app = create_app(s, announce_url=url)
    uvicorn.run(app, host=s.api_host, port=s.api_port, log_config=None, access_log=False,
                timeout_graceful_shutdown=30)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", "-n", help="Who or what uses the key (shown in the audit log)."),
    tenant: str = typer.Option("default", "--tenant", "-t", help="The tenant the key reads and writes."),
    role: List[str] = typer.Option(["reader"], "--role", "-r", help="reader, analyst, ingester or admin (repeatable)."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    from ..api.keys import KeyStore, keystore_path
    from ..errors import KGFError

    s = _settings(data_dir)
    ks = KeyStore(keystore_path(s.data_dir, s.key_store_path))
    try:
        key, rec = ks.create(name, tenant, role)
    except KGFError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    finally:
        ks.close()
    err.print(f"key {rec['id']} for tenant {rec['tenant']!r}, roles {', '.join(rec['roles'])} (shown once, keep it safe):")
    console.print(key, soft_wrap=True)


@keys_app.command("list")
def keys_list(data_dir: Optional[Path] = DataDir, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Keys with their tenant, roles and state (never the key itself)."""
    from ..api.keys import KeyStore, keystore_path

    s = _settings(data_dir)
    ks = KeyStore(keystore_path(s.data_dir, s.key_store_path))
    rows = ks.list()
    ks.close()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table(title=f"{len(rows)} API keys")
    for col in ("id", "name", "tenant", "roles", "created", "revoked"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["id"], r["name"], r["tenant"], ",".join(r["roles"]), r["created_at"], r["revoked_at"] or "")
    console.print(t)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (see `kgf keys list`)."), data_dir: Optional[Path] = DataDir) -> None:
    """Revoke a key: requests with it get 401 from now on (a running server sees it at once)."""
    from ..api.keys import KeyStore, keystore_path

    s = _settings(data_dir)
    ks = KeyStore(keystore_path(s.data_dir, s.key_store_path))
    ok = ks.revoke(key_id)
    ks.close()
    if not ok:
        err.print(f"[red]error:[/red] no active key with id {key_id!r}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


def audit(
    tenant: Optional[str] = typer.Option(None, help="Only this tenant."),
    action: Optional[str] = typer.Option(None, help="Only this action: query, ingest, delete, cypher, sparql, chat, auth."),
    limit: int = typer.Option(50, help="How many recent entries."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Read the append-only audit log (works while the server runs: SQLite allows concurrent readers)."""
    from ..api.audit import AuditLog, audit_path

    path = audit_path(_settings(data_dir).data_dir)
    if not path.exists():
        err.print("no audit log yet (it is written by `kgf serve`)")
        raise typer.Exit(0)
    log = AuditLog(path)
    rows = log.read(tenant=tenant, action=action, limit=limit)
    log.close()
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    t = Table(title=f"audit ({len(rows)} entries, newest first)")
    for col in ("seq", "time", "who", "tenant", "action", "target", "outcome"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r["seq"]), r["ts"][:23], r["who"] or "", r["tenant"] or "", r["action"], (r["target"] or "")[:60],
                  r["outcome"])
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(keys_app, name="keys")
    app.command()(audit)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
