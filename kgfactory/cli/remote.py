"""When `kgf serve` holds the data directory, `kgf ask`, `kgf ingest`, `kgf documents` and `kgf delete` go through
its API with `kgfactory.sdk.Client`, and print the same typed results as in-process calls.

Milvus Lite lets one process open a data directory. The server writes `<data_dir>/api/server.json`; these
commands find it and send the key in $KGF_API_KEY (none needed in open mode). Commands with no API route
(stats, runs, ...) stop with a message naming the server and its URL.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def _data_dir(data_dir: Optional[Path]) -> Path:
    from .errors import settings

    return (data_dir or settings().data_dir).expanduser().resolve()


def server_for(data_dir: Optional[Path]) -> dict | None:
    from ..api.serverfile import running_server

    return running_server(_data_dir(data_dir))


def refuse_if_served(data_dir: Optional[Path]) -> None:
    from .errors import REFUSED, fail

    info = server_for(data_dir)
    if info:
        fail(f"`kgf serve` (pid {info['pid']}) holds this data directory; use its API at {info['url']} (see "
             f"{info['url']}/docs), or stop the server first. `kgf ask`, `kgf ingest`, `kgf documents` and "
             "`kgf delete` go through it automatically.", REFUSED)


def client(info: dict, tenant: Optional[str]):
    """A Client for the server ($KGF_API_KEY); with `tenant`, checks first that the key is of that tenant (the
    server scopes every call to the key's tenant, so another one cannot be asked for)."""
    from ..sdk import Client

    c = Client(info["url"])
    if tenant is not None:
        try:
            me = c.whoami()
        except BaseException:
            c.close()
            raise
        if me["tenant"] != tenant:
            c.close()
            from .errors import REFUSED, fail

            fail(f"--tenant {tenant} but the server scopes this key to tenant {me['tenant']!r}; use a key of that "
                 "tenant (KGF_API_KEY)", REFUSED)
    return c
