"""How the knowledge graph reads as RDF (n10s conventions): one function per record kind, giving pyoxigraph triples.

Both the incremental sync and the full rebuild go through these functions, so the two give the same triples.

- Resources keep the `uri` the property graph stores: `urn:kgf:doc:<id>`, `urn:kgf:chunk:<id>`, `urn:kgf:entity:<id>`.
- An entity is typed with its ontology class and every superclass (as its node labels are), plus `kgfv:Entity`;
  its name is `rdfs:label`, its aliases `skos:altLabel`.
- A typed relation is the triple `<a> <objectProperty IRI> <b>`, plus a reified `rdf:Statement`
  (`urn:kgf:rel:<hash>`) carrying its provenance. CO_OCCURS edges are a retrieval device, not knowledge, and
  are left out of the view (the mentions say the same thing).
- Provenance in PROV-O: chunks, entities and relation statements `prov:wasDerivedFrom` their chunks and
  documents; `dcterms:isPartOf` links a chunk to its document.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Protocol, Sequence

from ..types import content_id


class ChunkLike(Protocol):
    """What a chunk's triples are made of: a types.Chunk being written, or a rows.ChunkText read back."""

    @property
    def id(self) -> str: ...
    @property
    def doc_id(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def page(self) -> int | None: ...
    @property
    def text(self) -> str: ...

VOCAB = "https://kgfactory.dev/vocab#"
PROV = "http://www.w3.org/ns/prov#"
DCT = "http://purl.org/dc/terms/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OWL = "http://www.w3.org/2002/07/owl#"

# the same strings the graph stores in each node's `uri`
ENTITY_NS, CHUNK_NS, DOC_NS = "urn:kgf:entity:", "urn:kgf:chunk:", "urn:kgf:doc:"
REL_NS = "urn:kgf:rel:"
TENANT_GRAPH = "urn:kgf:tenant:"
ONTOLOGY_GRAPH = "urn:kgf:ontology"
META_GRAPH = "urn:kgf:meta"
META_NODE = "urn:kgf:meta:view"

BASE_PREFIXES = {"kgfv": VOCAB, "prov": PROV, "dcterms": DCT, "rdf": RDF, "rdfs": RDFS, "skos": SKOS, "xsd": XSD,
                 "owl": OWL, "schema": "https://schema.org/"}
CO_OCCURS = "CO_OCCURS"


def tenant_graph(tenant: str) -> str:
    return TENANT_GRAPH + tenant


def prefixes_for(ontology) -> dict[str, str]:
    """Namespace prefixes for queries and Turtle: the ontology's own, then kgfactory's vocabularies."""
    out = {p: ns for p, ns in (ontology.prefixes or {}).items() if p}
    out.setdefault("kgf", ontology.namespace)
    for p, ns in BASE_PREFIXES.items():
        out.setdefault(p, ns)
    return out


class RdfMapper:
    """Turns graph records into pyoxigraph Triples; class and property names resolve through the ontology."""

    def __init__(self, ontology):
        import pyoxigraph as ox

        self.ox = ox
        self.ontology = ontology
        N = ox.NamedNode
        self.N = N
        self.type, self.label, self.alt = N(RDF + "type"), N(RDFS + "label"), N(SKOS + "altLabel")
        self.derived, self.part_of = N(PROV + "wasDerivedFrom"), N(DCT + "isPartOf")
        self.mentions, self.vid = N(VOCAB + "mentions"), N(VOCAB + "id")
        self.xsd_int, self.xsd_dt = N(XSD + "integer"), N(XSD + "dateTime")

    # -- names -------------------------------------------------------------------------------------
    def class_iri(self, name: str):
        c = self.ontology.classes.get(name)
        return self.N(c.iri if c is not None else self.ontology.namespace + name)

    def prop_iri(self, name: str):
        p = self.ontology.object_properties.get(name)
        return self.N(p.iri if p is not None else self.ontology.namespace + name)

    def v(self, local: str):
        return self.N(VOCAB + local)

    def entity(self, eid: str):
        return self.N(ENTITY_NS + eid)

    def chunk(self, cid: str):
        return self.N(CHUNK_NS + cid)

    def doc(self, did: str):
        return self.N(DOC_NS + did)

    def statement(self, source_id: str, rtype: str, target_id: str):
        return self.N(REL_NS + content_id(source_id, rtype, target_id))

    def _lit(self, value, datatype=None):
        return self.ox.Literal(str(value), datatype=datatype) if datatype is not None else self.ox.Literal(str(value))

    # -- records -----------------------------------------------------------------------------------
    def document_triples(self, id: str, title: str | None, source: str | None, tenant: str | None,
                         mime: str | None, tags: Sequence[str] | None, ingested_at: str | None) -> Iterator:
        """One document's triples; `ingested_at` is an ISO string."""
        T, s = self.ox.Triple, self.doc(id)
        yield T(s, self.type, self.v("Document"))
        yield T(s, self.type, self.N(PROV + "Entity"))
        yield T(s, self.vid, self._lit(id))
        for value, pred in ((title, DCT + "title"), (source, VOCAB + "source"), (tenant, VOCAB + "tenant"),
                            (mime, DCT + "format")):
            if value:
                yield T(s, self.N(pred), self._lit(value))
        if ingested_at:
            yield T(s, self.N(DCT + "created"), self._lit(ingested_at, self.xsd_dt))
        for tag in tags or []:
            yield T(s, self.v("tag"), self._lit(tag))

    def chunk_triples(self, c: ChunkLike) -> Iterator:
        """A chunk's triples (a types.Chunk being written, or a rows.ChunkText read back)."""
        T, s, d = self.ox.Triple, self.chunk(c.id), self.doc(c.doc_id)
        yield T(s, self.type, self.v("Chunk"))
        yield T(s, self.type, self.N(PROV + "Entity"))
        yield T(s, self.vid, self._lit(c.id))
        yield T(s, self.part_of, d)
        yield T(s, self.derived, d)
        for key, value in (("index", c.index), ("start", c.start), ("end", c.end), ("page", c.page)):
            if value is not None:
                yield T(s, self.v(key), self._lit(int(value), self.xsd_int))
        if c.text:
            yield T(s, self.v("text"), self._lit(c.text))

    def entity_triples(self, eid: str, classes: Iterable[str], name: str | None, aliases: Iterable[str],
                       found_by: str | None) -> Iterator:
        """`classes`: the node's class labels (class + superclasses). `name`/`found_by` None = already stored."""
        T, s = self.ox.Triple, self.entity(eid)
        yield T(s, self.type, self.v("Entity"))
        for cls in classes:
            yield T(s, self.type, self.class_iri(cls))
        if name is not None:
            yield T(s, self.vid, self._lit(eid))
            yield T(s, self.label, self._lit(name))
        if found_by:
            yield T(s, self.v("foundBy"), self._lit(found_by))
        for a in aliases:
            if a and a != name:
                yield T(s, self.alt, self._lit(a))

    def mention_triples(self, chunk_id: str, entity_id: str, doc_id: str) -> Iterator:
        T, e = self.ox.Triple, self.entity(entity_id)
        yield T(self.chunk(chunk_id), self.mentions, e)
        yield T(e, self.derived, self.chunk(chunk_id))
        yield T(e, self.derived, self.doc(doc_id))

    def relation_triples(self, source_id: str, rtype: str, target_id: str, chunk_ids: Iterable[str],
                         doc_of: dict[str, str]) -> Iterator:
        """The fact, and a reified statement that says which chunks and documents it comes from."""
        T, a, b, p = self.ox.Triple, self.entity(source_id), self.entity(target_id), self.prop_iri(rtype)
        st = self.statement(source_id, rtype, target_id)
        yield T(a, p, b)
        yield T(st, self.type, self.N(RDF + "Statement"))
        yield T(st, self.N(RDF + "subject"), a)
        yield T(st, self.N(RDF + "predicate"), p)
        yield T(st, self.N(RDF + "object"), b)
        for cid in chunk_ids:
            yield T(st, self.derived, self.chunk(cid))
            if cid in doc_of:
                yield T(st, self.derived, self.doc(doc_of[cid]))

    def ontology_triples(self) -> list:
        """The ontology (TBox) as triples, for `rdfs:subClassOf*` paths and label look-ups in queries."""
        import pyoxigraph as ox

        src = self.ontology.source
        data = None
        if src:
            from pathlib import Path

            p = Path(src)
            if p.is_file():
                data = p.read_bytes()
        if data is None:
            return []
        from .loader import FORMATS

        fmt = {"turtle": ox.RdfFormat.TURTLE, "xml": ox.RdfFormat.RDF_XML, "json-ld": ox.RdfFormat.JSON_LD,
               "nt": ox.RdfFormat.N_TRIPLES, "n3": ox.RdfFormat.N3}.get(FORMATS.get(p.suffix.lower(), "turtle"))
        try:
            return [q.triple for q in ox.parse(data, format=fmt, base_iri=p.resolve().as_uri())]
        except (SyntaxError, ValueError) as e:  # rdflib read it; oxigraph is stricter about some JSON-LD
            import logging

            logging.getLogger(__name__).warning("ontology not copied into the RDF view: %s", e)
            return []
