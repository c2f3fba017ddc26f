"""Subject entities: the thing a document is about, named by its title, linked to every chunk of it.

Wiki pages, product pages, profiles and tickets are titled by their subject, yet the subject is often named
once (or never) in the body, so mention extraction alone leaves the page unreachable from the entity. Here the
title becomes an entity (the same id as that name extracted anywhere else in the tenant, so a mention elsewhere
reaches the page about it) with a `subject` MENTIONS link from each of the document's chunks, which the retriever
weighs above a passing mention. A trailing disambiguation, "Green (album)", is kept in the name and its bare
form, "Green", becomes an alias, so questions that say "Green" find the page without merging it with the colour.
"""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Sequence

from ..textnorm import clean_surface, is_junk, normalise
from ..types import Chunk, Document, Entity, Extraction, Mention, content_id

MAX_TITLE_CHARS = 80
MAX_TITLE_WORDS = 8
_DISAMBIGUATION = re.compile(r"\s*\([^()]{1,40}\)\s*$")
_SENTENCE_END = re.compile(r"[.?!:;,]$")


def subject_name(doc: Document) -> tuple[str, str] | None:
    """(name, bare name) when the document's title names something, else None.

    A title names something when it is short, not the file's own name (parsers fall back to it), and either
    appears in the text or reads as a proper name (every word capitalised, not ending in a bare number:
    "Chapter 3" is a place in a book, not a thing)."""
    title = clean_surface(doc.title or "")
    if not title or len(title) > MAX_TITLE_CHARS or _SENTENCE_END.search(title):
        return None
    source = PurePath(doc.source.split("#", 1)[0])
    if title in (source.stem, source.name):
        return None
    bare = _DISAMBIGUATION.sub("", title).strip() or title
    key = normalise(bare)
    words = key.split()
    if not words or len(words) > MAX_TITLE_WORDS or is_junk(key) or key.isdigit():
        return None
    in_text = re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", normalise(doc.text[:4000])) is not None
    tokens = bare.split()
    proper = all(t[:1].isupper() or not t[:1].isalpha() for t in tokens) and not tokens[-1].isdigit()
    if not (in_text or proper):
        return None
    return title, bare


def add_subjects(docs: Sequence[Document], chunks: Sequence[Chunk], extraction: Extraction,
                 fallback_class: str = "Concept") -> Extraction:
    """The extraction with each titled document's subject entity and its subject links (in place)."""
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    entities = {e.id: e for e in extraction.entities}
    mentions = {(m.chunk_id, m.entity_id): m for m in extraction.mentions}
    for doc in docs:
        named = subject_name(doc)
        if named is None or not by_doc.get(doc.id):
            continue
        title, bare = named
        eid = _full_form(bare, by_doc[doc.id], mentions, entities) or content_id(doc.tenant, normalise(title),
                                                                                prefix="ent_")
        e = entities.get(eid)
        if e is None:
            e = entities[eid] = Entity(id=eid, name=title, label=fallback_class, tenant=doc.tenant, source="title")
            extraction.entities.append(e)
        for alias in {title, bare} - {e.name}:
            if alias not in e.aliases:
                e.aliases.append(alias)
        for c in by_doc[doc.id]:
            m = mentions.get((c.id, eid))
            if m is None:
                m = mentions[(c.id, eid)] = Mention(chunk_id=c.id, entity_id=eid, count=1)
                extraction.mentions.append(m)
            m.subject = True
    return extraction


def _full_form(bare: str, chunks: list[Chunk], mentions: dict, entities: dict) -> str | None:
    """A one-word title ("Helios") that is the first or last word of exactly one longer name the document
    mentions ("Helios Robotics") is that entity (the same rule as aliases.py)."""
    key = normalise(bare)
    if len(key.split()) != 1:
        return None
    ids = {m.entity_id for (cid, _), m in mentions.items() if cid in {c.id for c in chunks}}
    cands = []
    for eid in ids:
        words = normalise(entities[eid].name).split() if eid in entities else []
        if len(words) >= 2 and key in (words[0], words[-1]):
            cands.append(eid)
    return cands[0] if len(cands) == 1 else None
