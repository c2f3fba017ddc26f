"""Short forms merged into the full name within a document: "Varga" after "Elena Varga", "Lothair" after
"Lothair II". Text names a thing in full once and then shortly; left apart, the short form is a second entity
that splits the thing's mentions and joins unrelated people who share a surname across the corpus.

Rule (per document, so a surname shared by two people in one page stays apart): a one-word name that is the
first or last word of exactly one longer name found in the same document, of a compatible class, is that
entity there. Extractor-agnostic: it works on the Extraction, before it is written.
"""
from __future__ import annotations

from typing import Sequence

from ..textnorm import normalise
from ..types import Chunk, Extraction, Mention, Relation

FALLBACK = "Concept"


def merge_short_forms(chunks: Sequence[Chunk], extraction: Extraction) -> Extraction:
    doc_of = {c.id: c.doc_id for c in chunks}
    ents = {e.id: e for e in extraction.entities}
    in_doc: dict[str, set[str]] = {}
    for m in extraction.mentions:
        in_doc.setdefault(doc_of.get(m.chunk_id, ""), set()).add(m.entity_id)
    remap: dict[tuple[str, str], str] = {}  # (doc, short id) -> long id
    for doc, ids in in_doc.items():
        long_by_word: dict[str, list[str]] = {}
        for eid in ids:
            words = normalise(ents[eid].name).split() if eid in ents else []
            if len(words) >= 2:
                for w in {words[0], words[-1]}:
                    long_by_word.setdefault(w, []).append(eid)
        for eid in ids:
            e = ents.get(eid)
            key = normalise(e.name) if e else ""
            if not e or len(key.split()) != 1 or e.source not in ("ner", "noun_phrase", "llm"):
                continue
            cands = [c for c in long_by_word.get(key, ()) if _compatible(e.label, ents[c].label)]
            if len(cands) == 1:
                remap[(doc, eid)] = cands[0]
    if not remap:
        return extraction

    def to(chunk_id: str, eid: str) -> str:
        return remap.get((doc_of.get(chunk_id, ""), eid), eid)

    mentions: dict[tuple[str, str], Mention] = {}
    for m in extraction.mentions:
        k = (m.chunk_id, to(m.chunk_id, m.entity_id))
        if k in mentions:
            mentions[k].count += m.count
            mentions[k].subject = mentions[k].subject or m.subject
        else:
            mentions[k] = m.model_copy(update={"entity_id": k[1]})
    rels: dict[tuple[str, str, str], set[str]] = {}
    for r in extraction.relations:
        for c in r.chunk_ids:
            s, t = to(c, r.source_id), to(c, r.target_id)
            if s != t:
                rels.setdefault((s, t, r.type), set()).add(c)
    for (doc, short), long in remap.items():
        for a in {ents[short].name, *ents[short].aliases}:
            if a not in ents[long].aliases and a != ents[long].name:
                ents[long].aliases.append(a)
    used = {k[1] for k in mentions} | {x for s, t, _ in rels for x in (s, t)}
    extraction.entities = [e for e in extraction.entities if e.id in used]
    extraction.mentions = list(mentions.values())
    extraction.relations = [Relation(source_id=s, target_id=t, type=ty, chunk_ids=sorted(cs))
                            for (s, t, ty), cs in rels.items()]
    return extraction


def _compatible(short_cls: str, long_cls: str) -> bool:
    return short_cls == long_cls or FALLBACK in (short_cls, long_cls)
