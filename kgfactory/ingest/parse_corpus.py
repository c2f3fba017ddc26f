"""JSON / JSONL passage corpora: one Document per record, one FileError per bad record (the rest still parse).

Shapes accepted in .json: a list of {title, text, ...} records (MuSiQue), a dict title -> [sentences] or
title -> str (HotpotQA; text = "".join(sentences)), or one {title, text} object. JSONL: one record per line.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

from ..errors import ParseError
from ..types import Document, FileError
from .parse_common import (ParseOptions, check_not_binary, decode_utf8, make_document, normalise_newlines,
                           read_bytes, replace_lone_surrogates)

log = logging.getLogger(__name__)


def parse_json(path: Path, source: str, opts: ParseOptions) -> Iterator[Document | FileError]:
    """A whole-file problem raises ParseError; a bad record yields a FileError named f"{source}#{i}"."""
    raw = read_bytes(path, source, opts)
    check_not_binary(raw, source)
    data = _loads(decode_utf8(raw, source), source)
    if isinstance(data, list):
        records: Iterator[tuple[int, Any]] = enumerate(data)
    elif isinstance(data, dict) and _is_single_record(data):
        records = iter([(0, data)])
    elif isinstance(data, dict):
        records = ((i, _title_map_record(t, v)) for i, (t, v) in enumerate(data.items()))
    else:
        raise ParseError(source, f"expected a list of records or an object, got {_kind(data)}")
    if not data:
        raise ParseError(source, "JSON holds no records")
    for i, rec in records:
        yield record_document(rec, i, source, f"{source}#{i}", opts, facts={})


def parse_jsonl(path: Path, source: str, opts: ParseOptions) -> Iterator[Document | FileError]:
    """One record per non-blank line; a bad line yields a FileError named f"{source}:{lineno}".

    The record index i (for the Document source f"{source}#{i}") counts non-blank lines, bad ones included,
    so fixing one line does not renumber — and re-identify — every record after it.
    """
    raw = read_bytes(path, source, opts)
    check_not_binary(raw, source)
    offset, i = 0, 0
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        line_start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        index, i = i, i + 1
        try:
            text = decode_utf8(line, where, base_offset=line_start)
        except ParseError as e:
            yield FileError(source=where, reason=e.reason)
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            yield FileError(source=where, reason=f"invalid JSON: {e.msg} at column {e.colno}")
            continue
        yield record_document(rec, index, source, where, opts, facts={"line": lineno})
    if i == 0:
        raise ParseError(source, "empty file")


def record_document(rec: Any, i: int, file_source: str, err_source: str, opts: ParseOptions,
                    facts: dict[str, Any]) -> Document | FileError:
    """Validate one record; the id hashes its canonical JSON so key order or spacing changes are not 'new'."""
    if isinstance(rec, FileError):  # title-map entries are validated while being built
        return FileError(source=err_source, reason=rec.reason)
    if not isinstance(rec, dict):
        return FileError(source=err_source, reason=f"record is {_kind(rec)}, expected an object with a 'text' field")
    if "text" not in rec:
        return FileError(source=err_source, reason="record has no 'text' field")
    text = rec["text"]
    if not isinstance(text, str):
        return FileError(source=err_source, reason=f"record field 'text' is {_kind(text)}, expected a string")
    if not text.strip():
        return FileError(source=err_source, reason="record field 'text' is empty")
    text = replace_lone_surrogates(normalise_newlines(text), err_source)
    if len(text) > opts.max_record_chars:
        return FileError(source=err_source, reason=f"record text is {len(text)} characters, over the limit of "
                                                   f"{opts.max_record_chars} (KGF_MAX_RECORD_CHARS)")
    title = rec.get("title")
    title = replace_lone_surrogates(str(title).strip(), err_source) if title is not None else ""
    canonical = json.dumps(rec, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    source = f"{file_source}#{i}"
    extra = {k: v for k, v in rec.items() if k not in ("title", "text")}
    return make_document(source=source, hashed=canonical, title=title or f"record {i}", mime="text/plain",
                         text=text, opts=opts, facts={"path": file_source, "record_index": i, **facts},
                         extra=extra)


def _loads(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParseError(source, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except RecursionError as e:
        raise ParseError(source, "invalid JSON: nested too deeply") from e


def _is_single_record(d: dict) -> bool:
    """{title, text, ...} is one record; a title map has passage titles as keys.

    Ambiguous only when every value is a string (title -> str map vs. {title, text}); a 'title' key, or
    'text' being the only key, decides for a single record.
    """
    if not isinstance(d.get("text"), str):
        return False
    return "title" in d or len(d) == 1 or not all(isinstance(v, str) for v in d.values())


def _title_map_record(title: str, value: Any) -> dict[str, Any] | FileError:
    """HotpotQA shape: sentences keep their own leading spaces, so they are joined with no separator."""
    if isinstance(value, str):
        return {"title": title, "text": value}
    if isinstance(value, list):
        for n, s in enumerate(value):
            if not isinstance(s, str):
                return FileError(source="", reason=f"passage {title!r}: sentence {n} is {_kind(s)}, expected a string")
        return {"title": title, "text": "".join(value)}
    return FileError(source="", reason=f"passage {title!r} is {_kind(value)}, expected a list of sentences or a string")


def _kind(v: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(v), type(v).__name__)
