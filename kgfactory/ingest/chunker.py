"""Chunking with langchain-text-splitters, keeping each chunk's character span (and page) in its document."""
from __future__ import annotations

import logging
from functools import lru_cache

from ..errors import ConfigError
from ..types import Chunk, Document, content_id

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _token_length(model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    return lambda text: len(tok.encode(text, add_special_tokens=False))


class Chunker:
    """Recursive splitter on paragraph/sentence/word boundaries; size in characters or tokens."""

    def __init__(self, size: int = 1200, overlap: int = 150, unit: str = "chars", tokenizer_path: str | None = None):
        if overlap >= size:
            raise ConfigError(f"KGF_CHUNK_OVERLAP ({overlap}) must be smaller than KGF_CHUNK_SIZE ({size})")
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        length = len
        if unit == "tokens":
            if not tokenizer_path:
                raise ConfigError("KGF_CHUNK_UNIT=tokens needs the embedder's tokenizer path")
            length = _token_length(tokenizer_path)
        elif unit != "chars":
            raise ConfigError(f"KGF_CHUNK_UNIT must be 'chars' or 'tokens', not {unit!r}")
        self.unit, self.size, self.overlap = unit, size, overlap
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=size, chunk_overlap=overlap, length_function=length, add_start_index=True,
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""], keep_separator="end", strip_whitespace=True)

    @property
    def version(self) -> str:
        return f"recursive-{self.unit}-{self.size}-{self.overlap}"

    def split(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        if len(doc.text) <= self.size and self.unit == "chars":
            pieces = [(doc.text.strip(), doc.text.find(doc.text.strip()))]
        else:
            pieces = [(d.page_content, int(d.metadata.get("start_index", -1)))
                      for d in self._splitter.create_documents([doc.text])]
        cursor = 0
        for text, start in pieces:
            if not text:
                continue
            if start < 0 or doc.text[start:start + len(text)] != text:
                start = doc.text.find(text, cursor)  # langchain gives -1 when it cannot place a chunk
                if start < 0:
                    log.warning("%s: chunk %d could not be placed in the text; skipped", doc.source, len(chunks))
                    continue
            end = start + len(text)
            cursor = start + 1
            chunks.append(Chunk(id=content_id(doc.id, str(start), text, prefix="chk_"), doc_id=doc.id,
                                tenant=doc.tenant, index=len(chunks), text=text, start=start, end=end,
                                page=doc.page_at(start)))
        return chunks
