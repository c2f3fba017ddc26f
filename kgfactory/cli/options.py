"""What every `kgf` command module shares: the --data-dir option, and the services context that opens a data
directory (defined in main.py; reached lazily here so the command modules main.py registers need not import it)."""
from __future__ import annotations

import typer

DataDir = typer.Option(None, "--data-dir", "-d", help="Data directory (default: $KGF_DATA_DIR or ./kgf-data).")


def services(data_dir, **overrides):
    from .main import services as open_services

    return open_services(data_dir, **overrides)
