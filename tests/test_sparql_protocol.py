"""The SPARQL protocol's pure parts: content negotiation (q-values, wildcards, the `format` parameter clients
send), HTTP Basic credentials, the graph names a tenant may put in its dataset, and every graph format the
endpoint offers serialized from a real pyoxigraph result and read back by rdflib. The live endpoint with
SPARQLWrapper and rdflib's SPARQLStore is in test_api_live.py."""
from __future__ import annotations

import base64

import pytest

from kgfactory.api.auth import basic_password
from kgfactory.api.errors import ApiError
from kgfactory.api.routes.sparql import choose_format
from kgfactory.errors import SparqlError
from kgfactory.ontology.rdf_view import dataset_graphs
from kgfactory.ontology.sparql import GRAPH_FORMATS, MEDIA, SparqlResult


@pytest.mark.parametrize("kind,accept,params,want", [
    ("construct", "", [], "turtle"),
    ("construct", "*/*", [], "turtle"),
    ("construct", "application/rdf+xml", [], "rdfxml"),  # SPARQLWrapper's default for CONSTRUCT
    ("construct", "application/rdf+xml, application/sparql-results+xml", [], "rdfxml"),
    ("construct", "application/sparql-results+xml, application/rdf+xml", [], "rdfxml"),  # rdflib SPARQLStore
    ("construct", "application/ld+json", [], "jsonld"),
    ("construct", "application/n-quads", [], "nquads"),
    ("construct", "application/n-triples", [], "ntriples"),
    ("describe", "text/turtle;q=0.2, application/ld+json;q=0.9", [], "jsonld"),
    ("construct", "application/*", [], "ntriples"),
    ("construct", "text/*;q=0.5, application/ld+json;q=0.4", [], "turtle"),
    ("construct", "*/*;q=0.1, text/turtle;q=0", [], "ntriples"),  # q=0 rules Turtle out, */* still offers the rest
    ("construct", "image/png", ["xml"], "rdfxml"),  # SPARQLWrapper's format=xml for a graph result
    ("construct", "", ["json-ld", "application/ld+json"], "jsonld"),  # SPARQLWrapper's JSONLD
    ("select", "image/png", ["xml"], "xml"),
    ("select", "", [], "json"),
    ("select", "*/*", [], "json"),
    ("select", "text/csv;q=0.5, text/tab-separated-values", [], "tsv"),
    ("ask", "application/sparql-results+xml, application/rdf+xml", [], "xml"),
    ("select", "text/*", [], "csv"),
    ("select", "application/xml", ["bogus"], "xml"),  # an unknown parameter value falls through to Accept
])
def test_choose_format(kind, accept, params, want):
    assert choose_format(kind, accept, params) == want


@pytest.mark.parametrize("kind,accept", [("construct", "image/png"), ("construct", "text/turtle;q=0"),
                                         ("select", "application/rdf+xml"), ("construct", "text/csv")])
def test_not_acceptable_names_what_is_offered(kind, accept):
    with pytest.raises(ApiError) as e:
        choose_format(kind, accept, [])
    assert e.value.status == 406
    offered = ("text/turtle", "application/rdf+xml", "application/ld+json", "application/n-quads") \
        if kind == "construct" else ("application/sparql-results+json", "text/csv")
    assert all(m in str(e.value) for m in offered)


def test_basic_password():
    enc = base64.b64encode(b"anyone:kgf_key:with:colons").decode()
    assert basic_password(f"Basic {enc}") == "kgf_key:with:colons"  # the user name is ignored
    assert basic_password(f"basic {enc}") == "kgf_key:with:colons"
    assert basic_password("Bearer abc") is None and basic_password("") is None
    assert basic_password("Basic !!not-base64!!") == ""  # malformed: refused as a wrong key, not a missing one


def test_dataset_graphs_only_the_callers():
    allowed = ["urn:kgf:tenant:acme", "urn:kgf:ontology"]
    assert dataset_graphs(["urn:kgf:ontology", "urn:kgf:tenant:acme", "urn:kgf:ontology"], allowed, "p") == \
        ["urn:kgf:ontology", "urn:kgf:tenant:acme"]
    assert dataset_graphs([], allowed, "p") == []
    msgs = []
    for other in ("urn:kgf:tenant:globex", "urn:kgf:tenant:nobody", "http://example.org/g"):
        with pytest.raises(SparqlError, match="is not a graph you may query") as e:
            dataset_graphs([other], allowed, "default-graph-uri")
        msgs.append(str(e.value).replace(other, "X"))
    assert len(set(msgs)) == 1  # another tenant's graph reads exactly as one that does not exist


def _result():
    import pyoxigraph as ox

    ex = "http://example.org/"
    t = [ox.Triple(ox.NamedNode(ex + "ada"), ox.NamedNode(ex + "name"), ox.Literal("Ada Park", language="en")),
         ox.Triple(ox.NamedNode(ex + "ada"), ox.NamedNode(ex + "age"),
                   ox.Literal("42", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))),
         ox.Triple(ox.BlankNode("b"), ox.NamedNode(ex + "knows"), ox.NamedNode(ex + "ada"))]
    return SparqlResult(kind="construct", triples=t, prefixes={"ex": ex})


@pytest.mark.parametrize("fmt,rdflib_format", [("turtle", "turtle"), ("ntriples", "nt"), ("nquads", "nquads"),
                                               ("rdfxml", "xml"), ("jsonld", "json-ld")])
def test_every_graph_format_reads_back(fmt, rdflib_format):
    import rdflib

    content, media = _result().serialize(fmt)
    g = rdflib.Dataset() if fmt == "nquads" else rdflib.Graph()
    g.parse(data=content, format=rdflib_format)
    assert len(g) == 3 if fmt != "nquads" else len(list(g.quads())) == 3
    assert (rdflib.URIRef("http://example.org/ada"), rdflib.URIRef("http://example.org/name"),
            rdflib.Literal("Ada Park", lang="en")) in (g if fmt != "nquads" else g.default_graph)
    assert fmt in GRAPH_FORMATS and media == MEDIA[fmt]


def test_rdfxml_refuses_a_predicate_it_cannot_write():
    import pyoxigraph as ox

    r = SparqlResult(kind="construct", triples=[ox.Triple(ox.NamedNode("urn:a"), ox.NamedNode("urn:kgf:rel/1"),
                                                          ox.Literal("x"))])
    with pytest.raises(SparqlError, match="RDF/XML cannot write the predicate"):
        r.serialize("rdfxml")
    assert b"urn:kgf:rel/1" in r.serialize("ntriples")[0]
