"""The one directory walker: what `kgf ingest DIR`, `KnowledgeBase.ingest(DIR)` and `Client.ingest(DIR)` read.

The rule: recursive; only supported suffixes; entries whose name starts with "." below the given directory
are skipped (files and whole directories: .git, .venv, editor swap files), while the directory given and a
file named explicitly are taken even when hidden; symlinked directories are not followed (no loops);
sorted by path relative to the root, so runs are reproducible. Standard library only (the SDK's light
install uses it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from .limits import SUPPORTED_LIST, SUPPORTED_SUFFIXES

__all__ = ["walk", "supported", "unsupported_reason", "expand"]


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def unsupported_reason(path: Path) -> str:
    return f"unsupported file type {path.suffix.lower() or '(no extension)'} (supported: {SUPPORTED_LIST})"


def walk(root: Path, on_error: Callable[[OSError], None] | None = None) -> list[Path]:
    """The supported regular files under `root` by the rule above; unreadable directories go to `on_error`."""
    root = Path(root)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            f = Path(dirpath) / name
            if not name.startswith(".") and supported(f) and f.is_file():
                found.append(f)
    return sorted(found, key=lambda f: f.relative_to(root).parts)


def expand(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files named or found by walking, in order and without repeats, and the named paths that cannot be read
    (missing, not a regular file, unsupported type) with the reason. Callers decide whether those are fatal."""
    if isinstance(paths, (str, os.PathLike)):  # a lone path would otherwise be iterated character by character
        paths = [paths]
    files: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            files.extend(walk(path))
        elif not path.exists():
            bad.append((path, "no such file or directory"))
        elif not path.is_file():
            bad.append((path, "not a regular file (device, socket or pipe)"))
        elif not supported(path):
            bad.append((path, unsupported_reason(path)))
        else:
            files.append(path)
    return list(dict.fromkeys(files)), bad
