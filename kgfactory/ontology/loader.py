"""Load an OWL/RDFS ontology with rdflib into an `Ontology`.

Every failure is an `OntologyError` whose message names the file and what is wrong: a missing file, a parse error
(with the line where the parser gives one), no classes, a property whose domain or range names an undeclared
class, an rdfs:subClassOf cycle, a class or property name that cannot be a graph label. Nothing is cached and
nothing loads at import time.
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Iterable

from ..errors import OntologyError
from .model import IDENTIFIER, DataProp, Individual, ObjProp, OntClass, Ontology

log = logging.getLogger(__name__)

FORMATS = {".ttl": "turtle", ".owl": "xml", ".rdf": "xml", ".xml": "xml", ".jsonld": "json-ld", ".json": "json-ld",
           ".nt": "nt", ".n3": "n3"}
DEFAULT_RESOURCE = "default.ttl"
NER_LABEL = "https://kgfactory.dev/ontology#nerLabel"
_BUILTIN_NS = ("http://www.w3.org/2002/07/owl#", "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
               "http://www.w3.org/2000/01/rdf-schema#", "http://www.w3.org/2001/XMLSchema#")
_OBJECT_TYPES = ("ObjectProperty", "SymmetricProperty", "TransitiveProperty", "AsymmetricProperty",
                 "ReflexiveProperty", "IrreflexiveProperty", "InverseFunctionalProperty")


def default_ontology_path() -> Path:
    """Where the bundled default ontology lives (inside the installed package)."""
    return Path(str(resources.files("kgfactory.ontology") / DEFAULT_RESOURCE))


def local_name(iri: str) -> str:
    """The part of an IRI after '#', else after the last '/' (else after the last ':')."""
    s = str(iri)
    for sep in ("#", "/", ":"):
        if sep in s:
            return s.rsplit(sep, 1)[1]
    return s


def load_ontology(path: Path | str | None = None) -> Ontology:
    """Read and check an ontology file; None = the bundled enterprise ontology. Format from the file suffix."""
    if path is None or str(path) == "":
        data = (resources.files("kgfactory.ontology") / DEFAULT_RESOURCE).read_bytes()
        return _parse(data, "turtle", default_ontology_path())
    p = Path(path).expanduser()
    if not p.exists():
        raise OntologyError(f"ontology file not found: {p}")
    if not p.is_file():
        raise OntologyError(f"ontology path is not a file: {p}")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise OntologyError(f"{p}: unknown ontology format {p.suffix!r}; use one of {', '.join(sorted(FORMATS))}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise OntologyError(f"{p}: cannot read ontology file: {e}") from e
    return _parse(data, fmt, p)


def _parse(data: bytes, fmt: str, path: Path) -> Ontology:
    from rdflib import Graph

    g = Graph(bind_namespaces="core")
    try:
        g.parse(data=data, format=fmt, publicID=path.resolve().as_uri())
    except Exception as e:  # every rdflib parser raises its own type
        raise OntologyError(f"{path}: cannot parse as {fmt}: {_describe_parse_error(e, data, fmt)}") from e
    return from_graph(g, source=str(path), content=data)


def _describe_parse_error(e: Exception, data: bytes, fmt: str) -> str:
    """The parser's message, prefixed with 'line N' when the parser tells (or lets us work out) where."""
    line: int | None = None
    why = str(e).strip()
    if hasattr(e, "_i") and hasattr(e, "_str"):  # rdflib notation3 BadSyntax (turtle, n3)
        src, pos = getattr(e, "_str"), getattr(e, "_i")
        if isinstance(pos, int):
            if isinstance(src, bytes):
                line = src[:pos].count(b"\n") + 1
            elif isinstance(src, str):
                line = src[:pos].count("\n") + 1
        why = str(getattr(e, "_why", "") or why)
    elif callable(get_line := getattr(e, "getLineNumber", None)):  # xml.sax SAXParseException (RDF/XML)
        line = get_line()
        get_message = getattr(e, "getMessage", None)
        why = get_message() if callable(get_message) else why
    elif isinstance(lineno := getattr(e, "lineno", None), int):  # json.JSONDecodeError and friends (JSON-LD)
        line = lineno
        why = str(getattr(e, "msg", why))
    elif fmt == "nt":  # rdflib N-Triples gives no position; the format is line-based, so find the bad line
        line = _first_bad_ntriples_line(data)
    why = " ".join(why.split())
    if line is None:
        return why
    lines = data.splitlines()
    at = lines[line - 1].decode("utf-8", "replace").strip() if 0 < line <= len(lines) else ""
    return f"line {line}: {why}" + (f" (at: {at[:100]!r})" if at else "")


def _first_bad_ntriples_line(data: bytes) -> int | None:
    from rdflib import Graph

    for n, text in enumerate(data.splitlines(), 1):
        if text.strip() and not text.lstrip().startswith(b"#"):
            try:
                Graph().parse(data=text, format="nt")
            except Exception:
                return n
    return None


# ----------------------------------------------------------------------------------------- graph -> model


def from_graph(g, source: str = "", content: bytes = b"") -> Ontology:
    """Build and check an `Ontology` from an rdflib graph. `source` names the file in error messages."""
    from rdflib import BNode, Literal, URIRef
    from rdflib.namespace import OWL, RDF, RDFS, SKOS, XSD

    where = source or "<graph>"

    def text(s, *preds) -> str | None:
        """One literal for s: English first, then untagged, then any language; sorted for determinism."""
        for p in preds:
            vals = [o for o in g.objects(s, p) if isinstance(o, Literal)]
            for pick in (lambda o: o.language == "en", lambda o: not o.language, lambda o: True):
                chosen = sorted(str(o) for o in vals if pick(o))
                if chosen:
                    return chosen[0]
        return None

    def texts(s, p) -> list[str]:
        return sorted({str(o) for o in g.objects(s, p) if isinstance(o, Literal) and str(o).strip()})

    def check_name(node, what: str) -> str:
        name = local_name(node)
        if not IDENTIFIER.match(name):
            raise OntologyError(f"{where}: {what} {node} has local name {name!r}, which cannot be a graph label "
                                f"(must match {IDENTIFIER.pattern})")
        return name

    def builtin(node) -> bool:
        return str(node).startswith(_BUILTIN_NS)

    # ontology header
    onto = next(iter(sorted(o for o in g.subjects(RDF.type, OWL.Ontology) if isinstance(o, URIRef))), None)
    content_hash = hashlib.sha256(content).hexdigest() if content else ""
    version = (text(onto, OWL.versionInfo) if onto is not None else None) or (content_hash[:12] or "unversioned")

    # classes
    class_nodes = sorted({c for t in (OWL.Class, RDFS.Class) for c in g.subjects(RDF.type, t)
                          if isinstance(c, URIRef) and not builtin(c)})
    if not class_nodes:
        raise OntologyError(f"{where}: the ontology declares no classes (no owl:Class or rdfs:Class)")
    by_iri: dict[URIRef, str] = {}
    for c in class_nodes:
        name = check_name(c, "class")
        clash = next((i for i, n in by_iri.items() if n == name), None)
        if clash is not None:
            raise OntologyError(f"{where}: classes {clash} and {c} share the local name {name!r}")
        by_iri[c] = name

    namespace = _namespace(onto, [str(c)[: -len(n)] for c, n in by_iri.items()])
    ner_pred = next((p for p in set(g.predicates()) if str(p) == NER_LABEL), None) or \
        next((p for p in set(g.predicates()) if local_name(p) == "nerLabel"), None)

    classes: dict[str, OntClass] = {}
    for c, name in by_iri.items():
        parents = sorted({by_iri[p] for p in g.objects(c, RDFS.subClassOf) if p in by_iri and p != c})
        equivalent = {str(e) for e in g.objects(c, OWL.equivalentClass) if isinstance(e, URIRef)}
        equivalent |= {str(e) for e in g.subjects(OWL.equivalentClass, c) if isinstance(e, URIRef)}
        classes[name] = OntClass(iri=str(c), name=name, label=text(c, RDFS.label, SKOS.prefLabel) or name,
                                 alt_labels=texts(c, SKOS.altLabel), parents=parents,
                                 ner_labels=texts(c, ner_pred) if ner_pred is not None else [],
                                 equivalent=sorted(equivalent - {str(c)}),
                                 comment=text(c, RDFS.comment, SKOS.definition))
    _check_cycles(classes, where)

    def class_refs(prop, pred, what: str) -> list[str]:
        """Class names from rdfs:domain / rdfs:range, unions flattened; several statements are read as a union."""
        out: list[str] = []
        for o in g.objects(prop, pred):
            for ref in _flatten(g, o, prop, what, where):
                if ref in (OWL.Thing, RDFS.Resource):
                    return []  # anything
                if ref not in by_iri:
                    raise OntologyError(f"{where}: property {local_name(prop)} ({prop}) has {what} {ref}, "
                                        f"which is not a declared class")
                out.append(by_iri[ref])
        return sorted(set(out))

    # properties
    prop_types = {p: {str(t) for t in g.objects(p, RDF.type)} for p in set(g.subjects(RDF.type, None))
                  if isinstance(p, URIRef) and not builtin(p)}
    owl_ns = str(OWL)
    obj_nodes = sorted(p for p, ts in prop_types.items() if any(owl_ns + t in ts for t in _OBJECT_TYPES))
    data_nodes = sorted(p for p, ts in prop_types.items() if str(OWL.DatatypeProperty) in ts and p not in obj_nodes)
    for p, ts in sorted(prop_types.items()):  # plain rdf:Property: literal range -> datatype, else object
        if str(RDF.Property) in ts and p not in obj_nodes and p not in data_nodes:
            rng = g.value(p, RDFS.range)
            is_data = rng is not None and (rng == RDFS.Literal or str(rng).startswith(str(XSD)))
            (data_nodes if is_data else obj_nodes).append(p)

    prop_names: dict[URIRef, str] = {}
    for p in [*obj_nodes, *data_nodes]:
        name = check_name(p, "property")
        if name in prop_names.values():
            raise OntologyError(f"{where}: property {p} reuses the name {name!r} of another property")
        prop_names[p] = name

    objs: dict[str, ObjProp] = {}
    for p in obj_nodes:
        name, ts = prop_names[p], prop_types[p]
        inv = next((o for o in g.objects(p, OWL.inverseOf) if isinstance(o, URIRef)), None)
        if inv is None:  # owl:inverseOf is symmetric: Y inverseOf X makes X the inverse of Y
            inv = next((s for s in g.subjects(OWL.inverseOf, p) if isinstance(s, URIRef)), None)
        if inv is not None and inv not in obj_nodes:
            raise OntologyError(f"{where}: property {name} is owl:inverseOf {inv}, which is not a declared "
                                f"object property")
        objs[name] = ObjProp(iri=str(p), name=name, label=text(p, RDFS.label, SKOS.prefLabel) or name,
                             alt_labels=texts(p, SKOS.altLabel), domain=class_refs(p, RDFS.domain, "rdfs:domain"),
                             range=class_refs(p, RDFS.range, "rdfs:range"),
                             inverse_of=prop_names[inv] if inv is not None else None,
                             symmetric=str(OWL.SymmetricProperty) in ts, transitive=str(OWL.TransitiveProperty) in ts)
    for name, prop in list(objs.items()):  # an inverse without its own domain/range takes them from its partner
        if prop.inverse_of and not prop.domain and not prop.range:
            partner = objs[prop.inverse_of]
            objs[name] = prop.model_copy(update={"domain": partner.range, "range": partner.domain})

    datas: dict[str, DataProp] = {}
    for p in data_nodes:
        name = prop_names[p]
        rng = next((o for o in g.objects(p, RDFS.range) if isinstance(o, URIRef)), None)
        datas[name] = DataProp(iri=str(p), name=name, label=text(p, RDFS.label, SKOS.prefLabel) or name,
                               domain=class_refs(p, RDFS.domain, "rdfs:domain"),
                               range_datatype=str(rng) if rng is not None else None)

    # individuals: owl:NamedIndividual, or anything typed by a declared class
    ind_nodes = {s for s in g.subjects(RDF.type, OWL.NamedIndividual) if isinstance(s, URIRef)}
    ind_nodes |= {s for c in by_iri for s in g.subjects(RDF.type, c) if isinstance(s, URIRef)}
    individuals: dict[str, Individual] = {}
    for i in sorted(ind_nodes):
        types = [t for t in g.objects(i, RDF.type) if not isinstance(t, BNode)]
        declared = [by_iri[t] for t in types if t in by_iri]
        if declared:  # the most specific declared type
            cls = max(sorted(declared), key=lambda n: len(_ancestor_set(classes, n)))
        else:
            foreign = sorted(str(t) for t in types if not builtin(t))
            if foreign:
                raise OntologyError(f"{where}: individual {i} is typed {', '.join(foreign)}, not a declared class")
            cls = Ontology.FALLBACK_CLASS
        name = local_name(i) or str(i)
        individuals[name] = Individual(iri=str(i), name=name, label=text(i, RDFS.label, SKOS.prefLabel) or name,
                                       alt_labels=texts(i, SKOS.altLabel), class_name=cls)

    return Ontology(iri=str(onto) if onto is not None else "", version=version, namespace=namespace, source=source,
                    prefixes={p: str(n) for p, n in g.namespaces()}, classes=classes, object_properties=objs,
                    datatype_properties=datas, individuals=individuals, content_hash=content_hash)


def _flatten(g, node, prop, what: str, where: str) -> Iterable:
    """A class reference, or an owl:unionOf of them (nested unions too), as IRIs."""
    from rdflib import BNode
    from rdflib.collection import Collection
    from rdflib.namespace import OWL

    if not isinstance(node, BNode):
        yield node
        return
    members = g.value(node, OWL.unionOf)
    if members is None:
        raise OntologyError(f"{where}: property {local_name(prop)} has an anonymous {what} that is not an "
                            f"owl:unionOf of classes (unsupported class expression)")
    for m in Collection(g, members):
        yield from _flatten(g, m, prop, what, where)


def _namespace(onto, class_namespaces: list[str]) -> str:
    """The ontology's namespace: the classes' most common namespace under the ontology IRI, else IRI + '#'."""
    counts = Counter(class_namespaces)
    if onto is not None:
        base = str(onto).rstrip("#/")
        under = [ns for ns, _ in counts.most_common() if ns.rstrip("#/") == base]
        if under:
            return under[0]
        return str(onto) if str(onto).endswith(("#", "/")) else str(onto) + "#"
    return counts.most_common(1)[0][0]


def _ancestor_set(classes: dict[str, OntClass], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(classes[name].parents)
    while stack:
        c = stack.pop()
        if c not in seen:
            seen.add(c)
            stack.extend(classes[c].parents)
    return seen


def _check_cycles(classes: dict[str, OntClass], where: str) -> None:
    """Raise on an rdfs:subClassOf cycle, naming it (A -> B -> A). Self-subclassing is ignored (trivially true)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(c: str, path: list[str]) -> None:
        if state.get(c) == 2:
            return
        if state.get(c) == 1:
            cycle = path[path.index(c):] + [c]
            raise OntologyError(f"{where}: rdfs:subClassOf cycle: {' -> '.join(cycle)}")
        state[c] = 1
        for p in classes[c].parents:
            visit(p, [*path, c])
        state[c] = 2

    for c in sorted(classes):
        visit(c, [])
