"""Texts and file objects become files before they are ingested, named the same way everywhere: a text by its
title (so sending a title again replaces that text), an uploaded file by its own name. The API stages them in a
job's folder and its worker moves them to `<data_dir>/uploads/<tenant>/`; in-process ingest writes them there
directly. Pure functions, standard library only (the SDK's light install checks texts with them)."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import IO, Any, Iterable, Union

from ..errors import InvalidInputError
from . import limits as L

TextLike = Union[str, tuple[str, str], dict[str, Any]]
FileLike = Union[IO[bytes], tuple[str, Union[bytes, IO[bytes]]]]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,199}$")


class BadUploadName(InvalidInputError):
    """A file name that cannot name an upload (`unsupported`: a type the parsers do not read)."""

    def __init__(self, message: str, unsupported: bool = False):
        self.unsupported = unsupported
        super().__init__(message)


def text_items(texts: Iterable[TextLike] | TextLike | None) -> list[dict[str, Any]]:
    """Texts as {title, text[, metadata]}: a bare string is titled by its first words plus a hash (so sending it
    again is a no-op); a (title, text) pair or a dict with 'text' keeps its title. Refuses what no store can hold."""
    if texts is None:
        return []
    if isinstance(texts, (str, dict)):
        texts = [texts]
    items: list[dict[str, Any]] = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            words = " ".join(t.split()[:8])[:80] or "text"
            items.append({"title": f"{words} ({hashlib.sha256(t.encode('utf-8', 'surrogatepass')).hexdigest()[:8]})",
                          "text": t})
        elif isinstance(t, tuple) and len(t) == 2:
            items.append({"title": t[0], "text": t[1]})
        elif isinstance(t, dict) and "text" in t:
            items.append({"title": t.get("title") or f"text {i}", "text": t["text"],
                          **({"metadata": t["metadata"]} if t.get("metadata") else {})})
        else:
            raise InvalidInputError(f"texts[{i}]: give a string, a (title, text) pair or a dict with 'text'")
        for field in ("title", "text", "metadata"):
            try:
                json.dumps(items[-1].get(field), ensure_ascii=False, default=str).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(f"texts[{i}].{field}: text holds an unpaired UTF-16 surrogate, which is not "
                                        "valid Unicode") from None
    return items


def text_file_name(title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:60] or "text"
    return f"{slug}-{hashlib.sha256(title.encode()).hexdigest()[:10]}.json"


def stage_texts(items: list[dict[str, Any]], dest: Path) -> list[Path]:
    """Write each text as a one-record JSON file in `dest`; a title twice in one call is refused (nothing written)."""
    names = [text_file_name(t["title"]) for t in items]
    for t, name in zip(items, names):
        if names.count(name) > 1:
            raise InvalidInputError(f"title {t['title']!r} appears twice in one request")
    out = []
    for t, name in zip(items, names):
        meta = t.get("metadata") or {}
        rec = {"title": t["title"], "text": t["text"], **{k: v for k, v in meta.items() if k not in ("title", "text")}}
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
        out.append(dest / name)
    return out


def upload_name(name: str | None) -> str:
    """The base name a file is stored under; refuses names that could point elsewhere or that no parser reads."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or not _NAME.match(base) or base in (".", ".."):
        raise BadUploadName(f"file name {name!r} is not usable: use letters, digits, spaces and ._()+- "
                            "(at most 200 characters)")
    suffix = "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if suffix not in L.SUPPORTED_SUFFIXES:
        raise BadUploadName(f"{base}: unsupported file type {suffix or '(no extension)'}; supported: "
                            f"{L.SUPPORTED_LIST}", unsupported=True)
    return base


def named_files(files: Iterable[FileLike]) -> list[tuple[str, Union[bytes, IO[bytes]]]]:
    """(name, body) for each file given: a (name, bytes or binary file) pair, or a binary file named by its path."""
    out: list[tuple[str, Union[bytes, IO[bytes]]]] = []
    for i, f in enumerate(files):
        if isinstance(f, tuple):
            out.append(f)
            continue
        name = os.path.basename(getattr(f, "name", "") or "")
        if not name:
            raise InvalidInputError(f"files[{i}]: a file object without a name; pass (name, file) instead")
        out.append((name, f))
    return out


def stage_files(files: Iterable[FileLike], dest: Path) -> list[Path]:
    """Write (name, bytes or binary file) pairs and named binary files into `dest` under their checked names."""
    out = []
    for name, body in named_files(files):
        base = upload_name(name)
        data = bytes(body) if isinstance(body, (bytes, bytearray)) else body.read()
        dest.mkdir(parents=True, exist_ok=True)
        (dest / base).write_bytes(data)
        out.append(dest / base)
    return out


def check_tags(tags: Iterable[str]) -> list[str]:
    """Tags are 1-100 printable characters (no control characters or unpaired surrogates), at most 20."""
    out = list(tags)
    if len(out) > L.MAX_TAGS:
        raise InvalidInputError(f"at most {L.MAX_TAGS} tags")
    for t in out:
        if not isinstance(t, str) or not t or len(t) > L.MAX_TAG_CHARS:
            raise InvalidInputError(f"tag {t!r}: tags are 1-{L.MAX_TAG_CHARS} characters")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            bad = True
        else:
            bad = any(ord(ch) < 32 for ch in t)
        if bad:
            raise InvalidInputError(f"tag {t.encode('utf-8', 'backslashreplace').decode()!r}: tags hold no control "
                                    "characters or unpaired surrogates")
    return out
