"""The SPARQL 1.1 Service Description of the endpoint (what GET /sparql without a query answers), as a graph result
so it is serialized, and content-negotiated, like a CONSTRUCT result.

It states what the endpoint does for the caller: the query language (no update), the result formats it writes,
and the default dataset (the union of the caller's tenant graph and the ontology graph, which are also the only
graphs `default-graph-uri`/`named-graph-uri` may name).
"""
from __future__ import annotations

from .rdf_mapping import ONTOLOGY_GRAPH, tenant_graph
from .sparql import SparqlResult

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DCT_DESCRIPTION = "http://purl.org/dc/terms/description"
# the W3C format IRIs of what sparql.SparqlResult.serialize writes
RESULT_FORMAT_IRIS = ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                      "Turtle", "N-Triples", "N-Quads", "RDF_XML", "JSON-LD")


def service_description(endpoint: str, tenant: str) -> SparqlResult:
    """The description for a caller of `tenant` at `endpoint` (the URL it called, without the query string)."""
    import pyoxigraph as ox

    def N(iri: str) -> ox.NamedNode:
        return ox.NamedNode(iri)

    svc, dataset, default = ox.BlankNode("service"), ox.BlankNode("dataset"), ox.BlankNode("defaultGraph")
    a = N(RDF_TYPE)
    t: list[ox.Triple] = [
        ox.Triple(svc, a, N(SD + "Service")),
        ox.Triple(svc, N(SD + "endpoint"), N(endpoint)),
        ox.Triple(svc, N(SD + "supportedLanguage"), N(SD + "SPARQL11Query")),
        ox.Triple(svc, N(DCT_DESCRIPTION), ox.Literal(
            "kgfactory knowledge graph, read-only: SPARQL 1.1 Query (no Update). The default graph is the union of "
            "your tenant's graph and the ontology graph; default-graph-uri / named-graph-uri may name those two.")),
        *[ox.Triple(svc, N(SD + "resultFormat"), N(FORMATS + f)) for f in RESULT_FORMAT_IRIS],
        ox.Triple(svc, N(SD + "defaultDataset"), dataset),
        ox.Triple(dataset, a, N(SD + "Dataset")),
        ox.Triple(dataset, N(SD + "defaultGraph"), default),
        ox.Triple(default, a, N(SD + "Graph")),
    ]
    for i, name in enumerate((tenant_graph(tenant), ONTOLOGY_GRAPH)):
        g = ox.BlankNode(f"namedGraph{i}")
        t += [ox.Triple(dataset, N(SD + "namedGraph"), g), ox.Triple(g, a, N(SD + "NamedGraph")),
              ox.Triple(g, N(SD + "name"), N(name))]
    return SparqlResult(kind="describe", triples=t, prefixes={"sd": SD, "formats": FORMATS,
                                                               "dcterms": "http://purl.org/dc/terms/"})
