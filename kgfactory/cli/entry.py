"""The `kgf` console script. It checks that the [server] extra is installed before loading the CLI, so a light
install (`pip install kgfactory`, the HTTP client only) says what to install instead of a traceback."""
from __future__ import annotations

import sys

SERVER_MODULES = ("typer", "rich", "pydantic_settings")


def main() -> None:
    import importlib.util

    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        sys.stderr.write(
            f"kgf: the command line needs the server parts ({', '.join(missing)} not installed).\n"
            "Install them with:  pip install 'kgfactory[server,nlp]'\n"
            "This install has the Python client only: from kgfactory.sdk import Client\n")
        raise SystemExit(2)
    from .main import app

    app()


if __name__ == "__main__":
    main()
