"""SPARQL over the RDF view of a real ingest of the bundled sample (embedded FalkorDB, Milvus Lite, spaCy)."""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from kgfactory.errors import OntologyError, SparqlError

P = """PREFIX kgf: <https://kgfactory.dev/ontology#>
PREFIX kgfv: <https://kgfactory.dev/vocab#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX dcterms: <http://purl.org/dc/terms/>
"""


@pytest.fixture
def kb(make_services, sample_dir):
    svc = make_services()
    svc.pipeline.ingest([str(sample_dir)])
    return svc


def names(res, var="name"):
    return {b[var] for b in res.bindings() if var in b}


def test_type_hierarchy_query_matches_the_graph(kb):
    # every entity the graph labels Organization (Company and friends included) is an Organization in RDF
    want = {r["name"] for r in kb.graph.query("MATCH (e:Organization) RETURN e.name AS name")}
    assert {"Helios Robotics", "NVIDIA"} <= want
    res = kb.rdf.query(P + "SELECT ?name WHERE { ?e a kgf:Organization ; rdfs:label ?name }")
    assert res.kind == "select" and names(res) == want
    # the same through the ontology's hierarchy: instances of any subclass of Location
    res = kb.rdf.query(P + "SELECT DISTINCT ?name WHERE { ?c rdfs:subClassOf* kgf:Location . ?e a ?c, kgfv:Entity ; rdfs:label ?name }")
    assert {"Lyon", "Oslo", "France"} <= names(res)
    assert names(res) == {r["name"] for r in kb.graph.query("MATCH (e:Location) RETURN e.name AS name")}


def test_property_path_two_hops(kb):
    # Tomas Berg works for Helios Robotics, which is headquartered in Lyon (typed edges found in the text)
    edges = {(r["a"], r["t"], r["b"]) for r in kb.graph.query(
        "MATCH (a:Entity)-[r]->(b:Entity) WHERE type(r) IN ['worksFor', 'locatedIn'] RETURN a.name AS a, type(r) AS t, b.name AS b")}
    two_hop = {(a, c) for a, t, b in edges if t == "worksFor" for b2, t2, c in ((x, y, z) for x, y, z in edges) if t2 == "locatedIn" and b2 == b}
    assert two_hop, f"the sample should give a worksFor/locatedIn chain, got {edges}"
    res = kb.rdf.query(P + "SELECT ?p ?place WHERE { ?x kgf:worksFor/kgf:locatedIn ?y . ?x rdfs:label ?p . ?y rdfs:label ?place }")
    assert {(b["p"], b["place"]) for b in res.bindings()} == two_hop


def test_provenance_back_to_the_document(kb):
    res = kb.rdf.query(P + """SELECT DISTINCT ?title WHERE {
        ?st rdf:subject ?a ; rdf:predicate kgf:founded ; rdf:object ?b ; prov:wasDerivedFrom ?doc .
        ?doc a kgfv:Document ; dcterms:title ?title . ?a rdfs:label "Marie Dubois" . ?b rdfs:label "Helios Robotics" }""")
    assert names(res, "title") == {"people"}  # people.txt: "Marie Dubois founded Helios Robotics"
    # entity provenance: every chunk that mentions Oslo, and their documents
    res = kb.rdf.query(P + """SELECT DISTINCT ?title WHERE { ?e rdfs:label "Oslo" ; prov:wasDerivedFrom ?c .
        ?c a kgfv:Chunk ; dcterms:isPartOf ?d . ?d dcterms:title ?title }""")
    want = {r["title"] for r in kb.graph.query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e:Entity {name: 'Oslo'}) RETURN DISTINCT d.title AS title")}
    assert names(res, "title") == want and len(want) == 2


def test_results_in_every_format(kb):
    q = P + "SELECT ?name ?e WHERE { ?e a kgf:City, kgfv:Entity ; rdfs:label ?name } ORDER BY ?name"
    res = kb.rdf.query(q)
    cities = [b["name"] for b in res.bindings()]
    assert "Lyon" in cities and "Oslo" in cities
    body, media = res.serialize("json")
    doc = json.loads(body)
    assert media == "application/sparql-results+json" and doc["head"]["vars"] == ["name", "e"]
    assert [b["name"]["value"] for b in doc["results"]["bindings"]] == cities
    assert doc["results"]["bindings"][0]["e"]["type"] == "uri"
    body, media = res.serialize("xml")
    root = ET.fromstring(body)
    ns = "{http://www.w3.org/2005/sparql-results#}"
    assert media == "application/sparql-results+xml"
    assert [r.find(f"{ns}binding[@name='name']/{ns}literal").text for r in root.iter(f"{ns}result")] == cities
    body, media = res.serialize("csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert media == "text/csv" and rows[0] == ["name", "e"] and [r[0] for r in rows[1:]] == cities
    assert rows[1][1].startswith("urn:kgf:entity:")
    body, _ = res.serialize("tsv")
    lines = body.decode().splitlines()
    assert lines[0] == "?name\t?e" and lines[1].startswith('"') and "\t<urn:kgf:entity:" in lines[1]
    with pytest.raises(SparqlError, match="SELECT result"):
        res.serialize("turtle")


def test_ask_and_construct(kb):
    yes = kb.rdf.query(P + 'ASK { ?e rdfs:label "Marie Dubois" ; a kgf:Person }')
    no = kb.rdf.query(P + 'ASK { ?e rdfs:label "Marie Dubois" ; a kgf:Organization }')
    assert yes.kind == "ask" and yes.boolean is True and no.boolean is False
    assert json.loads(yes.serialize("json")[0]) == {"head": {}, "boolean": True}
    assert b"<boolean>false</boolean>" in no.serialize("xml")[0]
    res = kb.rdf.query(P + "CONSTRUCT { ?b kgf:foundedBy ?a } WHERE { ?a kgf:founded ?b }")
    assert res.kind == "construct" and len(res) >= 1
    ttl, media = res.serialize("turtle")
    assert media == "text/turtle" and b"kgf:foundedBy" in ttl
    from rdflib import Graph

    g = Graph().parse(data=ttl.decode(), format="turtle")
    nt, media = res.serialize("ntriples")
    assert media == "application/n-triples" and len(g) == len(Graph().parse(data=nt.decode(), format="nt")) == len(res)
    desc = kb.rdf.query(P + 'DESCRIBE ?e WHERE { ?e rdfs:label "Oslo" }')
    assert desc.kind == "describe" and len(desc) > 3


@pytest.mark.parametrize("update", [
    'INSERT DATA { <urn:a> <urn:b> "c" }',
    "PREFIX ex: <http://x#>\n# a comment\nDELETE WHERE { ?s ?p ?o }",
    "CLEAR ALL", "DROP GRAPH <urn:kgf:tenant:default>", "LOAD <http://example.org/x.ttl>",
    "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
])
def test_update_is_refused(kb, update):
    before = kb.rdf.count()
    with pytest.raises(SparqlError, match="read-only") as info:
        kb.rdf.query(update)
    assert isinstance(info.value, OntologyError) and "UPDATE" in str(info.value)
    assert kb.rdf.count() == before


def test_syntax_error_timeout_and_row_cap(kb):
    with pytest.raises(SparqlError, match="syntax"):
        kb.rdf.query("SELEKT ?x WHERE { ?x ?y ?z }")
    res = kb.rdf.query("SELECT ?s WHERE { ?s ?p ?o }", max_rows=5)
    assert len(res.rows) == 5 and res.truncated
    full = kb.rdf.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert int(full.bindings()[0]["n"]) > 5 and not full.truncated
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"  # a cube of a few thousand triples
    with pytest.raises(SparqlError, match="timed out after 0.2"):
        kb.rdf.query(slow, timeout_s=0.2)


def test_view_follows_delete(kb):
    docs = {d.title: d.id for d in kb.graph.list_documents()}
    doc_id = docs["Atlas Picker 2"]
    doc_iri = f"<urn:kgf:doc:{doc_id}>"
    assert kb.rdf.query(P + f"ASK {{ ?x prov:wasDerivedFrom {doc_iri} }}").boolean
    kb.pipeline.delete(doc_id)
    assert not kb.rdf.query(P + f"ASK {{ {{ {doc_iri} ?p ?o }} UNION {{ ?x ?p {doc_iri} }} }}").boolean
    # what only that document said is gone (the entities it alone mentioned), what others said stays
    left = {r["name"] for r in kb.graph.query("MATCH (e:Entity) RETURN e.name AS name")}
    res = kb.rdf.query(P + "SELECT ?name WHERE { ?e a kgfv:Entity ; rdfs:label ?name }")
    assert names(res) == left and "Helios Robotics" in left and "Atlas Picker 2" not in left
    # and the incremental view equals one rebuilt from the graph
    before = set(kb.rdf.export("nquads").splitlines())
    kb.rdf.rebuild()
    assert set(kb.rdf.export("nquads").splitlines()) == before


def test_incremental_view_equals_rebuild(kb, sample_dir, tmp_path):
    extra = tmp_path / "more.txt"
    extra.write_text("Priya Raman works for Helios Robotics. Helios Robotics is located in Lyon.")
    kb.pipeline.ingest([str(extra)])
    assert not kb.rdf.ensure_current(), "the incremental view kept up with the graph"
    incremental = set(kb.rdf.export("nquads").splitlines())
    kb.rdf.rebuild()
    assert set(kb.rdf.export("nquads").splitlines()) == incremental


def test_tenant_graphs_are_separate(make_services, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Marie Dubois works for Microsoft. Microsoft is headquartered in Berlin.")
    b.write_text("Tomas Berg works for OpenAI. OpenAI is headquartered in San Francisco.")
    svc = make_services()
    svc.pipeline.ingest([str(a)], tenant="acme")
    svc.pipeline.ingest([str(b)], tenant="globex")
    q = P + "SELECT ?name WHERE { ?e a kgf:Person ; rdfs:label ?name }"
    assert names(svc.rdf.query(q, tenant="acme")) == {"Marie Dubois"}
    assert names(svc.rdf.query(q, tenant="globex")) == {"Tomas Berg"}
    assert names(svc.rdf.query(q)) == {"Marie Dubois", "Tomas Berg"}
    # GRAPH ?g cannot reach another tenant's graph either
    res = svc.rdf.query("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", tenant="acme")
    assert {b["g"] for b in res.bindings()} <= {"urn:kgf:tenant:acme", "urn:kgf:ontology"}
    assert svc.rdf.tenants() == ["acme", "globex"]
    # the ontology graph is shared, so hierarchy paths work within a tenant
    res = svc.rdf.query(P + "SELECT DISTINCT ?name WHERE { ?e a kgfv:Entity ; a/rdfs:subClassOf* kgf:Organization ; rdfs:label ?name }", tenant="globex")
    assert "OpenAI" in names(res) and "Microsoft" not in names(res)


def test_view_rebuilds_after_another_process_wrote(make_services, sample_dir, tmp_path):
    """A data dir written without the view (an older kgfactory, a locked store) is rebuilt on first query."""
    import shutil

    svc = make_services()
    svc.pipeline.ingest([str(sample_dir)])
    n = svc.rdf.count()
    svc.rdf.close()
    shutil.rmtree(svc.settings.data_dir / "rdf")
    assert svc.rdf.count() == 0
    assert svc.rdf.query(P + 'ASK { ?e rdfs:label "Helios Robotics" }').boolean
    assert svc.rdf.count() == n
