"""SHACL shapes derived from the ontology, checked with pyshacl against the RDF view, with a readable report.

Shapes: every subject of an object property must be an instance of its domain, every object one of its range
(unions become sh:or); every entity needs an rdfs:label; datatype properties keep their domain and datatype.
Types in the view are materialised (class + superclasses), so `sh:class` needs no inference.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OntologyError
from .rdf_mapping import RDFS, VOCAB

SH = "http://www.w3.org/ns/shacl#"


@dataclass
class ShaclReport:
    conforms: bool
    results: list[dict] = field(default_factory=list)  # focus, focus_label, path, value, message, severity
    shapes: int = 0
    triples: int = 0

    def text(self, limit: int = 50) -> str:
        head = (f"SHACL: {'conforms' if self.conforms else f'{len(self.results)} violations'} "
                f"({self.shapes} shapes over {self.triples} triples)")
        lines = [head]
        for r in self.results[:limit]:
            lines.append(f"- {r['severity']}: {r['focus_label']} <{r['focus']}>"
                         + (f" {r['path']}" if r["path"] else "") + (f" -> {r['value']}" if r["value"] else "")
                         + f": {r['message']}")
        if len(self.results) > limit:
            lines.append(f"... and {len(self.results) - limit} more")
        return "\n".join(lines)


def shapes_graph(ontology):
    """An rdflib Graph of SHACL node shapes for the ontology's object/datatype properties and entities."""
    from rdflib import BNode, Graph, Literal, Namespace, URIRef
    from rdflib.collection import Collection
    from rdflib.namespace import RDF, XSD
    from rdflib.term import Node

    sh = Namespace(SH)
    g = Graph()
    g.bind("sh", sh)
    shapes = Namespace("urn:kgf:shape:")

    def class_constraint(node, classes: list[str], what: str) -> None:
        iris = [URIRef(ontology.classes[c].iri) for c in classes]
        if len(iris) == 1:
            g.add((node, sh["class"], iris[0]))
        else:
            alts: list[Node] = []
            for iri in iris:
                b = BNode()
                g.add((b, sh["class"], iri))
                alts.append(b)
            lst = BNode()
            Collection(g, lst, alts)
            g.add((node, sh["or"], lst))
        g.add((node, sh.message, Literal(f"{what} must be a {' or '.join(classes)}")))

    for p in [*ontology.object_properties.values(), *ontology.datatype_properties.values()]:
        if p.domain:  # object and datatype properties alike
            s = shapes[f"{p.name}-domain"]
            g.add((s, RDF.type, sh.NodeShape))
            g.add((s, sh.targetSubjectsOf, URIRef(p.iri)))
            class_constraint(s, p.domain, f"the subject of {p.name}")
    for p in ontology.object_properties.values():
        if p.range:
            s = shapes[f"{p.name}-range"]
            g.add((s, RDF.type, sh.NodeShape))
            g.add((s, sh.targetObjectsOf, URIRef(p.iri)))
            class_constraint(s, p.range, f"the object of {p.name}")
    for p in ontology.datatype_properties.values():
        if p.range_datatype:
            s, ps = shapes[f"{p.name}-datatype"], BNode()
            g.add((s, RDF.type, sh.NodeShape))
            g.add((s, sh.targetSubjectsOf, URIRef(p.iri)))
            g.add((s, sh.property, ps))
            g.add((ps, sh.path, URIRef(p.iri)))
            g.add((ps, sh.datatype, URIRef(p.range_datatype)))
    s, ps = shapes["Entity-label"], BNode()
    g.add((s, RDF.type, sh.NodeShape))
    g.add((s, sh.targetClass, URIRef(VOCAB + "Entity")))
    g.add((s, sh.property, ps))
    g.add((ps, sh.path, URIRef(RDFS + "label")))
    g.add((ps, sh.minCount, Literal(1)))
    g.add((ps, sh.datatype, XSD.string))
    g.add((ps, sh.message, Literal("an entity needs a name (rdfs:label, a string)")))
    return g


def validate(rdf_view, ontology=None, tenant: str | None = None) -> ShaclReport:
    """Check the view's instance data (all tenants, or one) against shapes from `ontology` (default: the view's)."""
    from rdflib import Graph, URIRef
    from rdflib.namespace import RDFS as RDFS_NS

    ontology = ontology or rdf_view.ontology
    try:
        import pyshacl
    except ImportError as e:  # a base dependency; say so plainly if it is missing
        raise OntologyError("SHACL validation needs pyshacl (pip install pyshacl)") from e
    data = Graph()
    data.parse(data=rdf_view.export("ntriples", tenant=tenant), format="nt")
    shapes = shapes_graph(ontology)
    conforms, results_graph, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", advanced=False,
                                                  allow_warnings=True)
    sh = lambda local: URIRef(SH + local)  # noqa: E731
    rows = []
    for res in results_graph.subjects(URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), sh("ValidationResult")):
        focus = results_graph.value(res, sh("focusNode"))
        path = results_graph.value(res, sh("resultPath"))
        value = results_graph.value(res, sh("value"))
        msg = results_graph.value(res, sh("resultMessage"))
        sev = results_graph.value(res, sh("resultSeverity"))
        rows.append({"focus": str(focus), "focus_label": str(data.value(focus, RDFS_NS.label) or ""),
                     "path": _short(path, rdf_view.prefixes) if path is not None else "",
                     "value": str(data.value(value, RDFS_NS.label) or value or "") if value is not None else "",
                     "message": str(msg or ""), "severity": _short(sev, {"sh": SH}) if sev is not None else ""})
    rows.sort(key=lambda r: (r["message"], r["focus_label"], r["focus"]))
    n_shapes = len(set(shapes.subjects(URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), sh("NodeShape"))))
    return ShaclReport(conforms=bool(conforms), results=rows, shapes=n_shapes, triples=len(data))


def _short(iri, prefixes: dict[str, str]) -> str:
    s = str(iri)
    for p, ns in sorted(prefixes.items(), key=lambda kv: -len(kv[1])):
        if ns and s.startswith(ns):
            return f"{p}:{s[len(ns):]}"
    return s
