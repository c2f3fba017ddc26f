"""Turn files and directories into Documents; bad inputs become FileErrors so one file never stops a batch.

Formats: plain text, Markdown, HTML (boilerplate removed), PDF (page spans), JSON/JSONL passage corpora.
Ids hash the source path and the bytes, so re-ingesting unchanged input is a harmless MERGE.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ParseError
from ..service.limits import SUPPORTED_SUFFIXES
from ..service.walk import unsupported_reason, walk
from ..types import Document, FileError
from .parse_common import (ParseOptions, abs_source, check_not_binary, decode_utf8, make_document,
                           normalise_newlines, read_bytes)
from .parse_corpus import parse_json, parse_jsonl
from .parse_pdf import parse_pdf

log = logging.getLogger(__name__)

__all__ = ["SUPPORTED_SUFFIXES", "iter_documents", "parse_file"]


# HTML elements that are page furniture, not content
_DROP_TAGS = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "template",
              "title"]  # the title is read first; left in, it would repeat at the top of fragment pages
_DROP_MARKERS = ("cookie", "banner", "sidebar", "menu")
# never dropped by class/id markers: a <body class="has-sidebar"> would otherwise take the whole page with it
_KEEP_CONTAINERS = {"html", "body", "main", "article"}
_MD_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_BLANK_RUNS = re.compile(r"\n{3,}")


def iter_documents(paths: Iterable[str | Path], *, tenant: str = "default", tags: Sequence[str] = (),
                   metadata: dict[str, Any] | None = None, max_file_bytes: int = 50 * 1024 * 1024,
                   max_record_chars: int = 2_000_000) -> Iterator[Document | FileError]:
    """Expand directories (recursive, sorted, hidden entries skipped) and parse every supported file.

    Yields Documents as they are parsed and a FileError for each bad file, line or record; never raises for
    one bad input. A file reached twice (listed and inside a listed directory) is parsed once.
    """
    opts = ParseOptions(tenant=tenant, tags=tuple(tags), metadata=dict(metadata or {}),
                        max_file_bytes=max_file_bytes, max_record_chars=max_record_chars)
    seen: set[str] = set()
    for item in _expand(paths):
        if isinstance(item, FileError):
            yield item
            continue
        source = abs_source(item)
        if source in seen:
            continue
        seen.add(source)
        try:
            yield from _parse(item, source, opts)
        except ParseError as e:
            yield FileError(source=e.source, reason=e.reason)
        except Exception as e:  # a parser bug or library crash on one odd file must not end the batch
            log.exception("unexpected error parsing %s", source)
            yield FileError(source=source, reason=f"unexpected error: {type(e).__name__}: {e}")


def parse_file(path: str | Path, *, tenant: str = "default", tags: Sequence[str] = (),
               metadata: dict[str, Any] | None = None, max_file_bytes: int = 50 * 1024 * 1024,
               max_record_chars: int = 2_000_000, errors: list[FileError] | None = None) -> list[Document]:
    """Parse one file; raise ParseError if the file as a whole is bad.

    Corpus files (.json/.jsonl) can have bad records among good ones: those are appended to `errors` when it is
    given (and logged as warnings either way), so the good records are still returned.
    """
    path = Path(path)
    source = abs_source(path)
    if not path.exists():
        raise ParseError(source, "no such file or directory")
    if path.is_dir():
        raise ParseError(source, "is a directory; use iter_documents to walk it")
    if not path.is_file():
        raise ParseError(source, "not a regular file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ParseError(source, unsupported_reason(path))
    opts = ParseOptions(tenant=tenant, tags=tuple(tags), metadata=dict(metadata or {}),
                        max_file_bytes=max_file_bytes, max_record_chars=max_record_chars)
    docs: list[Document] = []
    for item in _parse(path, source, opts):
        if isinstance(item, FileError):
            log.warning("skipped %s: %s", item.source, item.reason)
            if errors is not None:
                errors.append(item)
        else:
            docs.append(item)
    return docs


# -- path expansion --------------------------------------------------------------------------------------
def _expand(paths: Iterable[str | Path]) -> Iterator[Path | FileError]:
    """Explicit paths are reported when missing or unsupported; files found by walking are filtered quietly."""
    if isinstance(paths, (str, Path)):  # a lone path would otherwise be iterated character by character
        paths = [paths]
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            yield from _walk(path)
        elif not path.exists():
            yield FileError(source=abs_source(path), reason="no such file or directory")
        elif not path.is_file():
            yield FileError(source=abs_source(path), reason="not a regular file (device, socket or pipe)")
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            yield FileError(source=abs_source(path), reason=unsupported_reason(path))
        else:
            yield path


def _walk(root: Path) -> Iterator[Path | FileError]:
    """The one walker (service/walk.py); a directory it cannot read becomes a FileError, reported first."""
    problems: list[FileError] = []

    def onerror(e: OSError) -> None:
        problems.append(FileError(source=abs_source(Path(e.filename or root)),
                                  reason=f"cannot read directory: {e.strerror or e}"))

    found = walk(root, on_error=onerror)
    yield from problems
    yield from found


def _parse(path: Path, source: str, opts: ParseOptions) -> Iterator[Document | FileError]:
    suffix = path.suffix.lower()
    if suffix in (".txt", ".md", ".markdown"):
        yield _parse_text(path, source, opts, markdown=suffix != ".txt")
    elif suffix in (".html", ".htm"):
        yield _parse_html(path, source, opts)
    elif suffix == ".pdf":
        yield parse_pdf(path, source, opts)
    elif suffix == ".json":
        yield from parse_json(path, source, opts)
    elif suffix == ".jsonl":
        yield from parse_jsonl(path, source, opts)
    else:
        raise ParseError(source, unsupported_reason(path))


# -- text and markdown -------------------------------------------------------------------------------------
def _parse_text(path: Path, source: str, opts: ParseOptions, markdown: bool) -> Document:
    """Text is kept exactly as written (only CRLF -> LF): chunk offsets point into it."""
    raw = read_bytes(path, source, opts)
    check_not_binary(raw, source)
    text = normalise_newlines(decode_utf8(raw, source))
    if not text.strip():
        raise ParseError(source, "empty file (only whitespace)")
    title = (_markdown_title(text) if markdown else "") or path.stem
    return make_document(source=source, hashed=raw, title=title, mime="text/markdown" if markdown else "text/plain",
                         text=text, opts=opts, facts={"path": source})


def _markdown_title(text: str) -> str:
    """The first ATX level-1 heading outside fenced code (a '# comment' in a code block is not a title)."""
    in_fence = False
    for line in text.split("\n"):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            m = _MD_H1.match(line)
            if m:
                return m.group(1).strip()
    return ""


# -- html ----------------------------------------------------------------------------------------------------
def _parse_html(path: Path, source: str, opts: ParseOptions) -> Document:
    """Main content only: navigation, scripts and cookie banners would pollute chunks and entities."""
    from bs4 import BeautifulSoup  # imported lazily: only HTML ingest pays for it

    raw = read_bytes(path, source, opts)
    check_not_binary(raw, source)
    soup = BeautifulSoup(raw, "html.parser")  # bytes: bs4 honours <meta charset> and sniffs the encoding
    title = _html_title(soup) or path.stem

    for tag in soup.find_all(_DROP_TAGS):
        if not tag.decomposed:
            tag.decompose()
    for tag in soup.find_all(_has_boilerplate_marker):
        if not tag.decomposed and tag.name not in _KEEP_CONTAINERS:
            tag.decompose()

    main = soup.find("main")
    if main is not None:
        parts = [main]
    else:
        parts = soup.find_all("article") or [soup.body or soup]
    text = "\n\n".join(t for t in (_clean_text(p.get_text("\n")) for p in parts) if t)
    if not text:
        raise ParseError(source, "no text after removing boilerplate")
    return make_document(source=source, hashed=raw, title=title, mime="text/html", text=text, opts=opts,
                         facts={"path": source})


def _html_title(soup) -> str:
    for name in ("title", "h1"):
        tag = soup.find(name)
        if tag is not None:
            t = " ".join(tag.get_text(" ").split())
            if t:
                return t
    return ""


def _has_boilerplate_marker(tag) -> bool:
    attrs = getattr(tag, "attrs", None)
    if not attrs:
        return False
    classes = attrs.get("class") or []
    values = [c for c in (classes if isinstance(classes, list) else [classes])]
    values.append(attrs.get("id") or "")
    joined = " ".join(str(v) for v in values).lower()
    return any(m in joined for m in _DROP_MARKERS)


def _clean_text(text: str) -> str:
    """Trim each line and collapse runs of blank lines: HTML source indentation is not content."""
    lines = [line.strip() for line in normalise_newlines(text).replace("\r", "\n").split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
