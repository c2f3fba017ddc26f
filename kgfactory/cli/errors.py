"""How `kgf` fails: one line on stderr (`error: ...`, never a traceback for an expected error) and an exit code by
the table in EXIT_CODES (shown by `kgf --help`). The app's group class (`Group`) catches what a command leaves
uncaught, so every command, local or through a server, fails the same way."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import KGFError

EXIT_CODES = ("Exit codes: 0 done; 1 failed: a file was not ingested (missing, unsupported, unreadable, a record "
              "refused), something asked for is not there (knowledge base, document, entity), or the server or a "
              "store failed, could not be reached or is in use by another process; 2 refused: bad option, argument "
              "or setting, invalid input, or the data directory is served by `kgf serve` (use its API).")
DONE, FAILED, REFUSED = 0, 1, 2

err = Console(stderr=True, soft_wrap=True)  # soft_wrap: an error is one line, however long


def fail(message: str, code: int = FAILED) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def settings(data_dir: Path | None = None, **overrides: Any):
    """The Settings for a command (KGF_* and .env, then the command's options); a bad value is exit 2 naming it."""
    from ..settings import Settings

    kw = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        kw["data_dir"] = data_dir
    return Settings(**kw)  # a pydantic ValidationError is turned into one line by describe()


def describe(e: BaseException, remote: bool = False) -> tuple[str, int] | None:
    """(message, exit code) for an expected error; None for anything else (a bug: let it show its traceback).
    `remote`: the error came from a server (its HTTP status is named)."""
    from pydantic import ValidationError as PydanticValidationError

    from ..sdk.errors import APIError, TransportError
    from ..service.status import status_of

    if isinstance(e, PydanticValidationError) and e.title == "Settings":
        parts = [f"KGF_{str(x['loc'][0]).upper() if x['loc'] else '?'}: {x['msg']}" for x in e.errors()]
        return "bad setting " + "; ".join(parts), REFUSED
    if isinstance(e, TransportError):
        return f"cannot reach the server: {e}", FAILED
    if isinstance(e, APIError):
        where = f"server said {e.status}: " if remote and e.status else ""
        hint = " (set KGF_API_KEY to a key of this server)" if e.status == 401 else ""
        return f"{where}{e.message}{hint}", _code(e.status)
    if isinstance(e, KGFError):  # judged by the API's one status table, so local and served runs exit alike
        return str(e), _code(status_of(e)[0])
    return None


def _code(status: int | None) -> int:
    """Not there (404) or the service's fault (5xx): it failed; any other refusal is the caller's to fix."""
    return FAILED if status is None or status == 404 or status >= 500 else REFUSED


class Group(TyperGroup):
    """The `kgf` group: an expected error a command leaves uncaught ends as `error: ...` and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            known = describe(e)
            if known is None:
                raise
            fail(*known)


def flags_read_as_flags() -> None:
    """typer 0.29 (its vendored click) prints a `<bool>` type after every flag in the rich help, --help included,
    as if the flag took a value. A flag takes none: show no type for it. Typer versions without
    `display_type_rich` print flags plainly already and are left alone."""
    from typer import core

    option = getattr(core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if option is None or original is None or getattr(original, "kgf_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich.kgf_flags = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich  # type: ignore[method-assign]
