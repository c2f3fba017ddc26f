"""Shared guards for the parsers: bounded reads, binary/UTF-8 checks and Document construction.

Kept apart from parsers.py so the format helpers (PDF, JSON corpora) can use them without import cycles.
"""
from __future__ import annotations

import codecs
import errno
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParseError
from ..types import Document, PageSpan, content_id

log = logging.getLogger(__name__)

BINARY_SNIFF_BYTES = 8192
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls other than tab, LF and CR: NUL cuts FalkorDB's query text, Milvus filters cannot match them,
# and none of them is content. Vertical tab and form feed (page breaks in extracted PDF text) become LF.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_SUBST = {"\x0b": "\n", "\x0c": "\n"}


@dataclass(frozen=True)
class ParseOptions:
    """What every parser needs besides the file: who owns the documents and the size limits."""

    tenant: str = "default"
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    max_file_bytes: int = 50 * 1024 * 1024
    max_record_chars: int = 2_000_000


def read_bytes(path: Path, source: str, opts: ParseOptions) -> bytes:
    """Read a whole file, refusing oversized ones before reading a byte (stat first) and empty ones after."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ParseError(source, _os_reason(e)) from e
    if size > opts.max_file_bytes:
        raise ParseError(source, f"file is {size} bytes, over the limit of {opts.max_file_bytes} (KGF_MAX_FILE_BYTES)")
    try:
        with open(path, "rb") as f:
            # read at most one byte past the limit: the file may have grown since stat
            raw = f.read(opts.max_file_bytes + 1)
    except OSError as e:
        raise ParseError(source, _os_reason(e)) from e
    if len(raw) > opts.max_file_bytes:
        raise ParseError(source, f"file is over the limit of {opts.max_file_bytes} bytes (KGF_MAX_FILE_BYTES)")
    if not raw:
        raise ParseError(source, "empty file")
    return raw


def _os_reason(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return "no such file or directory"
    reason = e.strerror or str(e)
    return f"cannot read file: {reason}"


def check_not_binary(raw: bytes, source: str) -> None:
    """A NUL byte near the start means a binary file renamed or misnamed as text; refuse it early."""
    pos = raw.find(b"\x00", 0, BINARY_SNIFF_BYTES)
    if pos >= 0:
        raise ParseError(source, f"looks binary (NUL byte at offset {pos}); not a text file")


def decode_utf8(raw: bytes, source: str, base_offset: int = 0) -> str:
    """Strict UTF-8 (BOM allowed); the error names the absolute byte offset so the user can find it."""
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = base_offset + bom + e.start
        raise ParseError(source, f"not valid UTF-8 at byte {offset} (0x{raw[bom + e.start]:02x}); "
                                 "re-save as UTF-8") from e


def normalise_newlines(text: str) -> str:
    """Only CRLF -> LF; everything else stays exact because chunk offsets point into the text."""
    return text.replace("\r\n", "\n")


def replace_lone_surrogates(text: str, source: str) -> str:
    """JSON may carry unpaired \\ud800-style escapes that no store can encode; swap them for U+FFFD.

    One code point for one keeps every offset valid.
    """
    if _LONE_SURROGATE.search(text) is None:
        return text
    log.warning("%s: replaced unpaired surrogate escapes with U+FFFD", source)
    return _LONE_SURROGATE.sub("\ufffd", text)


def clean_text(text: str, source: str) -> str:
    """Text every store can hold: C0 control characters (NUL included) become a space (VT and FF a newline) and
    unpaired surrogates U+FFFD. One code point for one, so chunk and page offsets stay valid. Applied to every
    Document's text and title (files, JSON/JSONL records, texts sent through the API or the SDK)."""
    if _CONTROLS.search(text) is not None:
        n = len(_CONTROLS.findall(text))
        log.warning("%s: replaced %d control character(s) (NUL and the like) with spaces", source, n)
        text = _CONTROLS.sub(lambda m: _CONTROL_SUBST.get(m.group(), " "), text)
    return replace_lone_surrogates(text, source)


def make_document(*, source: str, hashed: bytes, title: str, mime: str, text: str, opts: ParseOptions,
                  facts: dict[str, Any], extra: dict[str, Any] | None = None,
                  pages: list[PageSpan] | None = None) -> Document:
    """Build a Document whose id is a hash of source + bytes, so re-ingesting the same input is a no-op.
    Text and title are cleaned here (clean_text), before anything is written.

    Metadata precedence: user metadata < record extras < parser facts (facts describe the input and must not lie).
    """
    meta: dict[str, Any] = dict(opts.metadata)
    if extra:
        meta.update(extra)
    meta.update(facts)
    text, title = clean_text(text, source), clean_text(title, source)
    return Document(id=content_id(source, hashed, prefix="doc_"), source=source, title=title, mime=mime, text=text,
                    pages=pages or [], tenant=opts.tenant, tags=list(opts.tags), metadata=meta)


def abs_source(path: Path) -> str:
    """The source string: absolute, symlinks resolved, so one file always has one source."""
    try:
        return str(path.expanduser().resolve())
    except (OSError, RuntimeError):  # symlink loop: fall back to the absolute spelling
        return os.path.abspath(os.path.expanduser(str(path)))
