"""RDF export/import (kgf export, kgf import) on real stores: embedded FalkorDB, Milvus Lite, MiniLM, spaCy.

The round trip preserves, for every entity in the view: its rdf:type triples (kgfv:Entity, class, superclasses),
rdfs:label, skos:altLabel and kgfv:id; and every typed relation triple <a> <property> <b> with its reified
rdf:Statement (subject/predicate/object). It does not re-create chunks, documents, mentions or chunk/document
provenance: imported facts say kgfv:foundBy "imported" and derive from an import run instead.
"""
from __future__ import annotations

import pyoxigraph as ox
import pytest

from kgfactory.ontology.rdf_import import RdfSyntaxError, import_rdf
from kgfactory.ontology.rdf_mapping import ENTITY_NS, RDF, RDFS, SKOS, VOCAB

KGF = "https://kgfactory.dev/ontology#"
KEEP = {RDF + "type", RDFS + "label", SKOS + "altLabel", VOCAB + "id"}
PRE = "@prefix kgf: <https://kgfactory.dev/ontology#> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"


def preserved(turtle: bytes) -> set[tuple[str, str, str]]:
    """The triples the round trip promises to keep (see the module docstring)."""
    out = set()
    for t in ox.parse(turtle, format=ox.RdfFormat.TURTLE):
        s, p, o = t.subject.value, t.predicate.value, t.object.value
        if s.startswith(ENTITY_NS) and (p in KEEP or (p.startswith(KGF) and o.startswith(ENTITY_NS))):
            out.add((s, p, o))
        elif s.startswith("urn:kgf:rel:") and p in (RDF + "subject", RDF + "predicate", RDF + "object"):
            out.add((s, p, o))
    return out


def test_round_trip_ingest_export_import_export(make_services, sample_dir, tmp_path):
    svc = make_services(tmp_path / "a")
    svc.pipeline.ingest([str(sample_dir)])
    first = svc.rdf.export("turtle")
    svc.close()
    before = preserved(first)
    typed_rels = {t for t in before if t[1].startswith(KGF) and t[1] != RDF + "type"}
    assert typed_rels, "the sample should give typed relations"
    f = tmp_path / "kg.ttl"
    f.write_bytes(first)

    svc2 = make_services(tmp_path / "b")
    rep = import_rdf(svc2, f)
    assert rep.errors == [] and rep.quarantined == 0
    assert rep.relations == len({(s, p, o) for s, p, o in typed_rels})
    second = svc2.rdf.export("turtle")
    assert preserved(second) == before
    # provenance is the import run, not chunks; entities say how they were found
    run_node = ox.NamedNode("urn:kgf:import:" + rep.run_id)
    g = list(ox.parse(second, format=ox.RdfFormat.TURTLE))
    assert sum(1 for t in g if t.object == run_node) == rep.relations
    assert not any(t.subject.value.startswith("urn:kgf:chunk:") for t in g)
    assert {t.object.value for t in g if t.predicate.value == VOCAB + "foundBy"} == {"imported"}
    # imported entities are seeds: their vectors are in the store
    name, eid = next((t.object.value, t.subject.value[len(ENTITY_NS):]) for t in g
                     if t.predicate.value == RDFS + "label")
    hits = svc2.vectors.search_entities(svc2.embedder.embed([name])[0], 3)
    assert eid in [h[0] for h in hits]


def test_misfit_quarantined_unknowns_reported_and_deletes_do_not_prune(make_services, tmp_path):
    f = tmp_path / "people.ttl"
    f.write_text(PRE + """
<http://ex.org/ada> a kgf:Person ; rdfs:label "Ada Lovelace" .
<http://ex.org/acme> a kgf:Company ; rdfs:label "Acme Analytical" .
<http://ex.org/ada> kgf:worksFor <http://ex.org/acme> .
<http://ex.org/acme> kgf:worksFor <http://ex.org/ada> .
<http://ex.org/bob> a kgf:Wizard ; rdfs:label "Bob" .
<http://ex.org/ada> kgf:teaches <http://ex.org/acme> .
""")
    svc = make_services()
    rep = import_rdf(svc, f, tenant="t1")
    assert (rep.entities, rep.relations, rep.quarantined) == (2, 1, 1)
    reasons = sorted(e.reason for e in rep.errors)
    assert len(reasons) == 2
    assert "unknown class <https://kgfactory.dev/ontology#Wizard>" in reasons[0]
    assert "unknown property <https://kgfactory.dev/ontology#teaches>" in reasons[1]
    assert all(e.source.startswith(str(f)) for e in rep.errors)
    q = svc.quarantine.list(tenant="t1")
    assert [(r["source_name"], r["type"], r["target_name"], r["origin"]) for r in q] == \
        [("Acme Analytical", "worksFor", "Ada Lovelace", "import")]
    rel = svc.graph.query("MATCH (a:Entity)-[r:worksFor]->(b:Entity) RETURN a.name AS a, b.name AS b, "
                          "r.chunk_ids AS c, labels(b) AS lb")
    assert [(r["a"], r["b"], r["c"]) for r in rel] == [("Ada Lovelace", "Acme Analytical", ["import:" + rep.run_id])]
    assert "Organization" in rel[0]["lb"]  # superclass label from the ontology
    # a document that mentions the same names is ingested and deleted: the imported facts stay
    doc = tmp_path / "note.txt"
    doc.write_text("Ada Lovelace works for Acme Analytical in London.")
    svc.pipeline.ingest([str(doc)], tenant="t1")
    did = svc.graph.list_documents(tenant="t1")[0].id
    svc.pipeline.delete(did)
    rel = svc.graph.query("MATCH (a:Entity)-[r:worksFor]->(b:Entity) RETURN r.chunk_ids AS c")
    assert [r["c"] for r in rel] == [["import:" + rep.run_id]]
    assert "Ada Lovelace" in svc.rdf.export("ntriples").decode()


def test_bad_syntax_names_the_line_and_writes_nothing(make_services, tmp_path):
    f = tmp_path / "bad.ttl"
    f.write_text(PRE + '<http://ex.org/ada> a kgf:Person ; rdfs:label "Ada" .\n<http://ex.org/x> a kgf:Person ;; "oops\n')
    svc = make_services()
    rev = svc.graph.revision()
    with pytest.raises(RdfSyntaxError, match=r"bad\.ttl.*(line 4|:4)"):
        import_rdf(svc, f)
    assert svc.graph.revision() == rev
    assert svc.graph.export_entities() == [] and svc.vectors.count("entities") == 0
