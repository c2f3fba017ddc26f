"""Typed rows at the GraphStore port: what the store's reads return, so no caller guesses at dict keys.

Frozen slotted dataclasses, not pydantic models: the exports return tens of thousands of rows that the retriever
turns into arrays, and a dataclass is built several times faster (about 0.6 us a row) with nothing to validate
(the store wrote these values itself). Field names are the column names of the Cypher in graph/cypher.py, so an
adapter builds a row with `Row(**record)`. `dataclasses.asdict(row)` gives the plain dict an API response needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A Document node. `status`: 'pending' (being written), 'complete', or 'deleting'; the counts and run are
    set when the document completes. `metadata` is the parsed JSON object it was stored as."""

    id: str
    source: str
    title: str
    mime: str
    tenant: str
    tags: list[str]
    metadata: dict[str, Any]
    ingested_at: str | None
    status: str | None
    chunk_count: int | None
    entity_count: int | None
    run_id: str | None


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """A chunk of a complete document, with what the retriever filters on."""

    id: str
    doc_id: str
    tenant: str
    tags: list[str] | None


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk with its text and its document's title, source, tags and tenant (context enrichment)."""

    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    page: int | None
    title: str | None
    source: str | None
    tags: list[str] | None
    tenant: str | None


@dataclass(frozen=True, slots=True)
class ChunkText:
    """A chunk of a complete document with its offsets, page and text (the RDF view's rebuild)."""

    id: str
    doc_id: str
    index: int
    start: int
    end: int
    page: int | None
    text: str
    tenant: str


@dataclass(frozen=True, slots=True)
class ChunkLinks:
    """The chunks before and after one chunk of the same document (None at either end)."""

    id: str
    prev_id: str | None
    next_id: str | None


@dataclass(frozen=True, slots=True)
class EntityRow:
    """An Entity node as the retriever indexes it. `found_by`: vocabulary, ner, noun_phrase, llm, imported."""

    id: str
    name: str
    aliases: list[str] | None
    label: str | None
    tenant: str | None
    found_by: str | None


@dataclass(frozen=True, slots=True)
class EntityClassRow:
    """An Entity node with its class (`label`) and every node label (class plus superclasses and 'Entity')."""

    id: str
    name: str | None
    aliases: list[str] | None
    found_by: str | None
    tenant: str | None
    label: str | None
    labels: list[str]


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """One entity as analysts see it: its class, node labels and how it was found."""

    id: str
    name: str | None
    label: str | None
    aliases: list[str] | None
    labels: list[str]
    found_by: str | None


@dataclass(frozen=True, slots=True)
class ChunkEntity:
    """An entity a chunk mentions."""

    chunk_id: str
    id: str
    name: str
    label: str | None


@dataclass(frozen=True, slots=True)
class MentionRow:
    """(:Chunk)-[:MENTIONS {count, subject}]->(:Entity)."""

    chunk_id: str
    entity_id: str
    count: int | None
    subject: bool | None


@dataclass(frozen=True, slots=True)
class EdgeRow:
    """An entity-entity edge: CO_OCCURS or a typed relation; `weight` is its number of supporting chunks."""

    source_id: str
    target_id: str
    type: str
    weight: float | None


@dataclass(frozen=True, slots=True)
class TypedRelationRow:
    """A typed (not CO_OCCURS) relation with its provenance and both ends' names and classes."""

    source_id: str
    target_id: str
    type: str
    chunk_ids: list[str] | None
    tenant: str | None
    source_name: str | None
    target_name: str | None
    source_class: str | None
    target_class: str | None


@dataclass(frozen=True, slots=True)
class Neighbour:
    """An entity related to another one, inside one tenant; `outgoing`: the edge starts at the asked entity."""

    type: str
    outgoing: bool
    id: str
    name: str | None
    label: str | None
    weight: float | None


@dataclass(frozen=True, slots=True)
class EntityMention:
    """A chunk that mentions an entity, and how often."""

    chunk_id: str
    doc_id: str
    count: int | None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node as stored, for copying between engines: its id, labels and every property."""

    id: str
    labels: list[str]
    props: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RelationRecord:
    """An entity-entity relationship as stored, for copying between engines."""

    source_id: str
    target_id: str
    type: str
    props: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ViewNode:
    """A node of one tenant, for that tenant's analyst view: its labels and properties."""

    labels: list[str]
    props: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ViewEdge:
    """An edge between two nodes of one tenant (`a` of the asked label), for that tenant's analyst view."""

    a: str | None
    b_labels: list[str] | None
    b: str | None
    type: str
    props: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EntityRelation:
    """A typed (not CO_OCCURS) relation of one entity, inside one tenant, with the chunks that support it;
    `outgoing`: the edge starts at the asked entity."""

    type: str
    outgoing: bool
    id: str
    name: str | None
    label: str | None
    chunk_ids: list[str] | None


@dataclass(frozen=True, slots=True)
class NeighbourhoodEdge:
    """An entity-entity edge found from one of the asked entities (`from_id`), as stored (source -> target),
    with the other end's name and class: one step of a neighbourhood walk."""

    from_id: str
    source_id: str
    target_id: str
    type: str
    weight: float | None
    other_id: str
    other_name: str | None
    other_label: str | None
