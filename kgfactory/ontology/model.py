"""The ontology as plain, immutable data: classes with their hierarchy, properties with domain and range, vocabulary.

Everything the ingest and the graph obey comes from here: node labels (class names plus their superclasses, as
n10s class-hierarchy inference would give), relationship types (object property names), which typed edges are
allowed (domain/range, subclasses included), how NER labels map to classes, and the known-entity vocabulary.

Names (class and property local names) are used verbatim as Cypher labels and relationship types, so the loader
only admits names matching `IDENTIFIER`.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ..errors import OntologyError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class OntClass(_Frozen):
    """An owl:Class / rdfs:Class. `parents` are the direct superclasses (declared classes only)."""

    iri: str
    name: str
    label: str
    alt_labels: list[str] = Field(default_factory=list)
    parents: list[str] = Field(default_factory=list)
    ner_labels: list[str] = Field(default_factory=list)
    equivalent: list[str] = Field(default_factory=list)  # IRIs of owl:equivalentClass (e.g. schema.org)
    comment: str | None = None  # rdfs:comment (or skos:definition): what the class is for, shown to analysts


class ObjProp(_Frozen):
    """An object property. `alt_labels` are the trigger phrases that signal it in text."""

    iri: str
    name: str
    label: str
    alt_labels: list[str] = Field(default_factory=list)
    domain: list[str] = Field(default_factory=list)  # class names, a union; empty = any class
    range: list[str] = Field(default_factory=list)  # class names, a union; empty = any class
    inverse_of: str | None = None
    symmetric: bool = False
    transitive: bool = False


class DataProp(_Frozen):
    iri: str
    name: str
    label: str
    domain: list[str] = Field(default_factory=list)  # empty = any class
    range_datatype: str | None = None  # datatype IRI, e.g. http://www.w3.org/2001/XMLSchema#date


class Individual(_Frozen):
    """An owl:NamedIndividual: a known entity whose label and alt labels are surface forms."""

    iri: str
    name: str
    label: str
    alt_labels: list[str] = Field(default_factory=list)
    class_name: str


class Ontology(_Frozen):
    """A loaded ontology. Build it with `kgfactory.ontology.loader.load_ontology`."""

    FALLBACK_CLASS: ClassVar[str] = "Concept"

    iri: str
    version: str
    namespace: str
    source: str = ""
    prefixes: dict[str, str] = Field(default_factory=dict)
    classes: dict[str, OntClass]
    object_properties: dict[str, ObjProp] = Field(default_factory=dict)
    datatype_properties: dict[str, DataProp] = Field(default_factory=dict)
    individuals: dict[str, Individual] = Field(default_factory=dict)
    content_hash: str = ""

    _ancestors: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _ner: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _add_fallback_class(cls, data: Any) -> Any:
        """The fallback class always exists, declared or not, so every entity can be typed."""
        if isinstance(data, dict):
            classes = dict(data.get("classes") or {})
            if cls.FALLBACK_CLASS not in classes:
                ns = data.get("namespace") or ""
                classes[cls.FALLBACK_CLASS] = OntClass(iri=ns + cls.FALLBACK_CLASS, name=cls.FALLBACK_CLASS,
                                                       label=cls.FALLBACK_CLASS)
                data = {**data, "classes": classes}
        return data

    def model_post_init(self, _context: Any) -> None:
        for key, c in self.classes.items():
            if key != c.name or not IDENTIFIER.match(c.name):
                raise OntologyError(f"class {c.iri}: name {c.name!r} is not a valid graph label")
        for c in self.classes.values():
            self._ancestors[c.name] = tuple(self._walk_up(c.name))
        # one class per NER label: the most general claimant (fewest ancestors), then by name, for determinism
        for c in sorted(self.classes.values(), key=lambda c: (len(self._ancestors[c.name]), c.name)):
            for ner in c.ner_labels:
                self._ner.setdefault(ner.upper(), c.name)

    def _walk_up(self, cls: str) -> list[str]:
        out: list[str] = []
        frontier = list(self.classes[cls].parents)
        while frontier:
            nxt: list[str] = []
            for c in frontier:
                if c != cls and c not in out and c in self.classes:
                    out.append(c)
                    nxt.extend(self.classes[c].parents)
            frontier = nxt
        return out

    def _known(self, cls: str) -> OntClass:
        try:
            return self.classes[cls]
        except KeyError:
            raise OntologyError(f"unknown ontology class {cls!r}") from None

    # ------------------------------------------------------------------------------------------- hierarchy

    def ancestors(self, cls: str) -> list[str]:
        """Transitive superclasses of `cls`, nearest first, without `cls` itself. Unknown class: OntologyError."""
        self._known(cls)
        return list(self._ancestors[cls])

    def labels_for(self, cls: str) -> list[str]:
        """Node labels for an instance of `cls`: the class then its superclasses (n10s-style inference).

        Only allow-listed names ever come back, so the result is safe to splice into Cypher.
        """
        return [cls, *self.ancestors(cls)]

    def is_a(self, cls: str, other: str) -> bool:
        """`cls` is `other` or a (transitive) subclass of it; False for unknown classes."""
        if cls not in self.classes or other not in self.classes:
            return False
        return cls == other or other in self._ancestors[cls]

    def allows(self, prop: str, src_cls: str, dst_cls: str) -> bool:
        """An edge `prop` from a `src_cls` node to a `dst_cls` node respects domain and range.

        Subclasses count (a Company may work-for-target as an Organization); an empty domain or range admits any
        known class; a symmetric property is accepted in either orientation.
        """
        p = self.object_properties.get(prop)
        if p is None or src_cls not in self.classes or dst_cls not in self.classes:
            return False

        def fits(a: str, b: str) -> bool:
            return ((not p.domain or any(self.is_a(a, d) for d in p.domain))
                    and (not p.range or any(self.is_a(b, r) for r in p.range)))

        return fits(src_cls, dst_cls) or (p.symmetric and fits(dst_cls, src_cls))

    # -------------------------------------------------------------------------------------- allow-lists

    def class_for_ner_label(self, ner_label: str) -> str | None:
        """The class a spaCy NER label maps to through `kgf:nerLabel`, or None."""
        return self._ner.get(ner_label.upper())

    def entity_labels(self) -> set[str]:
        """Allow-list of node labels: every class name."""
        return set(self.classes)

    def relation_types(self) -> set[str]:
        """Allow-list of typed relationship types: every object property name."""
        return set(self.object_properties)

    def vocabulary(self) -> list[tuple[str, str, str]]:
        """(surface form, class name, canonical label) for every individual's label and alt labels."""
        out: list[tuple[str, str, str]] = []
        for ind in self.individuals.values():
            seen: set[str] = set()
            for surface in (ind.label, *ind.alt_labels):
                if surface.strip() and surface not in seen:
                    seen.add(surface)
                    out.append((surface, ind.class_name, ind.label))
        return out
