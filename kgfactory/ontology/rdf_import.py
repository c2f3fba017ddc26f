"""Import RDF instance data typed by the ontology (like n10s.rdf.import) into the property graph.

What becomes what:
- a resource typed (rdf:type) with an ontology class becomes an Entity node; its class is the most specific of its
  ontology types, node labels add the superclasses (as ingest does); `rdfs:label` (else `skos:prefLabel`, else the
  IRI's local name) is its name, `skos:altLabel`/`skos:prefLabel` its aliases. A resource named `urn:kgf:entity:<id>`
  (a kgfactory export) keeps its id, any other IRI gets `content_id(tenant, iri)`.
- a triple `<a> <objectProperty> <b>` between two such resources becomes a typed relation when domain and range
  allow it; a misfit goes to the quarantine (origin "import"), never into the graph.
- provenance is "imported": entities get `found_by = "imported"`, relations carry the pseudo chunk id
  `import:<run id>` in `chunk_ids` instead of real chunk ids. No document delete can prune that id, and imported
  entities are never mentioned by a chunk, so a document delete never removes imported facts (an imported entity
  that shares its id with an ingested one is the exception: it goes when the last chunk mentioning it does).
  The run itself is an IngestRun (extractor "rdf-import").
- kgfactory's own vocabularies (kgfv:, prov:, dcterms:, rdf:, rdfs:, skos:, owl:, xsd:) are read or skipped
  silently (so are the ontology's datatype properties, which the graph does not store): chunk/document provenance
  in an export is not re-created. Any other class or property is an error
  for that triple (file, subject, reason), counted and reported; the rest of the file is imported.

The whole file is parsed and checked before anything is written, so bad syntax writes nothing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OntologyError
from ..types import Entity, FileError, IngestRun, Relation, RelationViolation, content_id
from .rdf_mapping import BASE_PREFIXES, ENTITY_NS, RDF, RDFS, SKOS

log = logging.getLogger(__name__)

IMPORT_PREFIX = "import:"  # relation provenance: chunk_ids holds "import:<run id>" for imported facts
FORMATS = {"turtle": "TURTLE", "ttl": "TURTLE", "ntriples": "N_TRIPLES", "nt": "N_TRIPLES", "jsonld": "JSON_LD",
           "json-ld": "JSON_LD", "nquads": "N_QUADS", "trig": "TRIG", "xml": "RDF_XML", "rdfxml": "RDF_XML"}
SUFFIX_FORMAT = {".ttl": "turtle", ".nt": "ntriples", ".jsonld": "jsonld", ".json": "jsonld", ".nq": "nquads",
                 ".trig": "trig", ".rdf": "xml", ".owl": "xml", ".xml": "xml"}
SKIPPED_NS = tuple(set(BASE_PREFIXES.values()) - {"https://schema.org/"})


@dataclass
class ImportReport:
    run_id: str
    file: str
    entities: int = 0
    relations: int = 0
    quarantined: int = 0
    triples: int = 0
    errors: list[FileError] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "file": self.file, "entities": self.entities, "relations": self.relations,
                "quarantined": self.quarantined, "triples": self.triples, "seconds": self.seconds,
                "errors": [e.model_dump() for e in self.errors]}


class RdfSyntaxError(OntologyError):
    """The RDF file does not parse; the message names the file and line."""


def guess_format(path: Path, fmt: str | None) -> str:
    name = (fmt or SUFFIX_FORMAT.get(path.suffix.lower(), "turtle")).lower()
    if name not in FORMATS:
        raise OntologyError(f"unknown RDF format {name!r}; use one of {', '.join(sorted(set(FORMATS)))}")
    return name


def parse_file(path: Path, fmt: str | None = None) -> list:
    """All triples of the file (quads' graph names dropped), or RdfSyntaxError naming file and line."""
    import pyoxigraph as ox

    path = Path(path)
    if not path.is_file():
        raise OntologyError(f"{path}: no such file")
    rf = getattr(ox.RdfFormat, FORMATS[guess_format(path, fmt)])
    try:
        return [q.triple if hasattr(q, "triple") else q
                for q in ox.parse(path.read_bytes(), format=rf, base_iri=path.resolve().as_uri())]
    except SyntaxError as e:
        line = getattr(e, "lineno", None)
        where = f"{path}:{line}" if line else str(path)
        raise RdfSyntaxError(f"{where}: RDF syntax error: {e.msg if hasattr(e, 'msg') else e}") from e
    except ValueError as e:
        raise RdfSyntaxError(f"{path}: cannot read as {fmt or 'RDF'}: {e}") from e


def _local(iri: str) -> str:
    for sep in ("#", "/", ":"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[-1]
    return iri


def _skipped(iri: str) -> bool:
    return iri.startswith(SKIPPED_NS)


class RdfImporter:
    """Reads one file against the ontology, then writes entities, relations, vectors and quarantine rows."""

    def __init__(self, svc):
        self.svc = svc
        self.onto = svc.ontology
        self.class_of_iri = {c.iri: name for name, c in self.onto.classes.items()}
        self.prop_of_iri = {p.iri: name for name, p in self.onto.object_properties.items()}
        # the graph has no place for datatype-property values yet: known ones are skipped, not errors
        self.data_iris = {getattr(p, "iri", "") for p in self.onto.datatype_properties.values()}

    def plan(self, triples: list, tenant: str, file: str, run_id: str):
        """(entities, relations, violations, errors) from the triples; writes nothing."""
        import pyoxigraph as ox

        onto, errors = self.onto, []
        classes: dict[Any, list[str]] = {}
        names: dict[Any, dict[str, list[str]]] = {}

        def err(subject, reason: str) -> None:
            errors.append(FileError(source=f"{file}: {getattr(subject, 'value', subject)}", reason=reason))

        for t in triples:
            p = t.predicate.value
            if p == RDF + "type":
                o = t.object
                if not isinstance(o, ox.NamedNode):
                    err(t.subject, "rdf:type object is not an IRI")
                elif o.value in self.class_of_iri:
                    classes.setdefault(t.subject, []).append(self.class_of_iri[o.value])
                elif not _skipped(o.value):
                    err(t.subject, f"unknown class <{o.value}> (not in ontology {onto.version})")
            elif p in (RDFS + "label", SKOS + "prefLabel", SKOS + "altLabel") and isinstance(t.object, ox.Literal):
                names.setdefault(t.subject, {}).setdefault(p, []).append(t.object.value)
        entities: dict[Any, Entity] = {}
        for s, cls in classes.items():
            if not isinstance(s, ox.NamedNode):
                err(s, "typed resource is a blank node; give it an IRI")
                continue
            # the most specific class: the one all others are ancestors of (ties: first by name)
            best = sorted(set(cls), key=lambda c: (-len(onto.ancestors(c)), c))[0]
            n = names.get(s, {})
            name = (n.get(RDFS + "label") or n.get(SKOS + "prefLabel") or [_local(s.value)])[0]
            aliases = sorted({a for k in (SKOS + "altLabel", SKOS + "prefLabel", RDFS + "label")
                              for a in n.get(k, []) if a != name})
            eid = s.value[len(ENTITY_NS):] if s.value.startswith(ENTITY_NS) else content_id(tenant, s.value)
            entities[s] = Entity(id=eid, name=name, label=best, aliases=aliases, tenant=tenant, source="imported")
        relations: dict[tuple, Relation] = {}
        violations: list[RelationViolation] = []
        prov = IMPORT_PREFIX + run_id
        for t in triples:
            p = t.predicate.value
            if p == RDF + "type" or _skipped(p) or p in self.data_iris:
                continue
            if p not in self.prop_of_iri:
                err(t.subject, f"unknown property <{p}> (not an object property of ontology {onto.version})")
                continue
            prop = self.prop_of_iri[p]
            a, b = entities.get(t.subject), entities.get(t.object)
            if a is None or b is None:
                which = "subject" if a is None else "object"
                err(t.subject, f"{prop}: {which} <{getattr(t.object if b is None else t.subject, 'value', '?')}> "
                               f"is not typed with an ontology class")
                continue
            if not onto.allows(prop, a.label, b.label):
                violations.append(RelationViolation(
                    source_id=a.id, target_id=b.id, type=prop, source_name=a.name, target_name=b.name,
                    source_class=a.label, target_class=b.label, chunk_ids=[prov],
                    reason=f"domain/range: {prop} does not allow {a.label} -> {b.label} (imported from {file})"))
                continue
            relations.setdefault((a.id, prop, b.id), Relation(source_id=a.id, target_id=b.id, type=prop,
                                                              chunk_ids=[prov]))
        return list(entities.values()), list(relations.values()), violations, errors

    def run(self, path: Path | str, fmt: str | None = None, tenant: str = "default") -> ImportReport:
        t0 = time.perf_counter()
        path = Path(path)
        run_id = content_id(str(path.resolve()), str(time.time_ns()), prefix="imp-", size=16)
        triples = parse_file(path, fmt)  # raises before anything is written
        entities, relations, violations, errors = self.plan(triples, tenant, str(path), run_id)
        rep = ImportReport(run_id=run_id, file=str(path), triples=len(triples), errors=errors)
        svc = self.svc
        if entities:
            svc.graph.write_extraction(entities, [], relations)
            vecs = svc.embedder.embed([e.name for e in entities])
            svc.vectors.ensure(svc.embedder.dim)
            svc.vectors.upsert_entities(entities, vecs)
            svc.vectors.refresh()
        if violations and svc.quarantine is not None:  # no document: doc_id stays empty, chunk_id is the run
            svc.quarantine.add_violations(violations, {}, tenant, self.onto.version, origin="import")
        rep.entities, rep.relations, rep.quarantined = len(entities), len(relations), len(violations)
        rep.seconds = round(time.perf_counter() - t0, 3)
        svc.graph.record_run(IngestRun(id=run_id, extractor="rdf-import", ontology_version=self.onto.version,
                                       embed_model=getattr(svc.embedder, "model_id", ""), entities=rep.entities,
                                       relations=rep.relations, quarantined=rep.quarantined, errors=errors,
                                       finished_at=None, timings={"total": rep.seconds}))
        svc.graph.bump_revision()  # the retriever, the RDF view and the tenant views reload on this
        if svc.rdf is not None:
            svc.rdf.rebuild()
        log.info("imported %s: %d entities, %d relations, %d quarantined, %d errors", path, rep.entities,
                 rep.relations, rep.quarantined, len(errors))
        return rep


def import_rdf(svc, path: Path | str, fmt: str | None = None, tenant: str = "default") -> ImportReport:
    return RdfImporter(svc).run(path, fmt, tenant)
