"""The HTTP API (FastAPI): `create_app()`; `kgf serve` runs it under uvicorn."""
from .app import create_app

__all__ = ["create_app"]
