"""PDF text extraction with pypdf: one Document per file, page spans so citations can name a page."""
from __future__ import annotations

import io
import logging
from pathlib import Path

from ..errors import ParseError
from ..types import Document, PageSpan
from .parse_common import ParseOptions, make_document, normalise_newlines, read_bytes

log = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"


def parse_pdf(path: Path, source: str, opts: ParseOptions) -> Document:
    """Join page texts with a blank line; each PageSpan covers exactly its page's text (separators excluded)."""
    from pypdf import PdfReader  # imported lazily: only PDF ingest pays for it

    raw = read_bytes(path, source, opts)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            # many PDFs are "encrypted" with an empty user password only to restrict printing; try that first
            try:
                ok = reader.decrypt("")
            except Exception as e:  # missing crypto backend, unsupported algorithm
                raise ParseError(source, f"PDF is encrypted and could not be decrypted: {e}") from e
            if not ok:
                raise ParseError(source, "PDF is encrypted (password required); decrypt it first")
        pages = list(reader.pages)
    except ParseError:
        raise
    except Exception as e:  # pypdf raises many types for damaged files
        raise ParseError(source, f"not a readable PDF: {type(e).__name__}: {e}") from e

    texts: list[str] = []
    failed: list[int] = []
    for n, page in enumerate(pages, start=1):
        try:
            texts.append(normalise_newlines(page.extract_text() or ""))
        except Exception as e:  # one damaged page should not lose the rest of the document
            log.warning("%s: page %d text extraction failed: %s", source, n, e)
            texts.append("")
            failed.append(n)
    if not any(t.strip() for t in texts):
        raise ParseError(source, "PDF has no extractable text (scanned? run OCR first)")

    spans: list[PageSpan] = []
    pos = 0
    for n, t in enumerate(texts, start=1):
        if n > 1:
            pos += len(PAGE_SEPARATOR)
        spans.append(PageSpan(page=n, start=pos, end=pos + len(t)))
        pos += len(t)
    text = PAGE_SEPARATOR.join(texts)

    facts: dict = {"path": source, "page_count": len(pages)}
    if failed:
        facts["unreadable_pages"] = failed
    return make_document(source=source, hashed=raw, title=_pdf_title(reader) or path.stem, mime="application/pdf",
                         text=text, opts=opts, facts=facts, pages=spans)


def _pdf_title(reader) -> str:
    """The document-info title, if any; broken metadata must not fail an otherwise readable PDF."""
    try:
        meta = reader.metadata
        title = meta.title if meta is not None else None
    except Exception:
        return ""
    return str(title).strip() if title else ""
