"""The ontology shapes the graph: hierarchy labels, uri, graph config, quarantine of domain/range violations,
SHACL, ontology version changes, and the `kgf sparql` / `kgf ontology` commands. Real ingest of the sample."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kgfactory.cli.main import app
from kgfactory.ontology.loader import default_ontology_path

runner = CliRunner()
RULE_BREAKER = "Berlin works for Microsoft. Marie Dubois works for Microsoft."  # a City cannot work for anyone


@pytest.fixture
def kb(make_services, sample_dir, tmp_path):
    extra = tmp_path / "docs" / "odd.txt"
    extra.parent.mkdir()
    extra.write_text(RULE_BREAKER)
    svc = make_services()
    run = svc.pipeline.ingest([str(sample_dir), str(extra)])
    svc.test_run = run
    return svc


def _v2(tmp_path, drop_city: bool = True, uses_domain: str = "Organization"):
    """The default ontology as version 2.0.0: City removed (its individuals become plain Locations), and `uses`
    restricted to `uses_domain`."""
    text = default_ontology_path().read_text().replace('owl:versionInfo "1.0.0"', 'owl:versionInfo "2.0.0"')
    if drop_city:
        start = text.index("kgf:City a owl:Class")
        end = text.index("kgf:Country a owl:Class")
        text = text[:start] + text[end:]
        text = text.replace(", kgf:City ;", ", kgf:Location ;")
    text = text.replace("kgf:uses a owl:ObjectProperty ;\n    rdfs:label \"uses\"@en ;\n    rdfs:domain kgf:Organization",
                        f"kgf:uses a owl:ObjectProperty ;\n    rdfs:label \"uses\"@en ;\n    rdfs:domain kgf:{uses_domain}")
    p = tmp_path / "onto-v2.ttl"
    p.write_text(text)
    return p


def test_entities_carry_class_and_superclass_labels_and_uri(kb):
    rows = {r["name"]: r for r in kb.graph.query(
        "MATCH (e:Entity) RETURN e.name AS name, labels(e) AS labels, e.uri AS uri, e.label AS label")}
    assert set(rows["Helios Robotics"]["labels"]) >= {"Entity", "Organization"}
    assert set(rows["Lyon"]["labels"]) == {"Entity", "City", "Location"}
    assert set(rows["Kubernetes"]["labels"]) == {"Entity", "SoftwareApplication", "Technology"}
    for r in rows.values():  # every label on a node is the class plus exactly its superclasses
        assert set(r["labels"]) - {"Entity"} == set(kb.ontology.labels_for(r["label"]))
    missing = kb.graph.query("MATCH (n) WHERE (n:Entity OR n:Chunk OR n:Document) AND n.uri IS NULL RETURN count(n) AS n")
    assert missing[0]["n"] == 0
    # the RDF view uses the same IRIs and the same class hierarchy
    lyon = rows["Lyon"]["uri"]
    res = kb.rdf.query(f"SELECT ?t WHERE {{ <{lyon}> a ?t }}")
    assert {b["t"] for b in res.bindings()} == {"https://kgfactory.dev/ontology#City",
                                                "https://kgfactory.dev/ontology#Location",
                                                "https://kgfactory.dev/vocab#Entity"}


def test_graph_config_and_run_record_the_ontology(kb):
    from kgfactory.ontology.evolution import read_graph_config

    cfg = read_graph_config(kb.graph)
    assert cfg["config"]["ontology_version"] == "1.0.0" and cfg["config"]["_handleVocabUris"] == "MAP"
    assert cfg["prefixes"]["kgf"] == "https://kgfactory.dev/ontology#"
    assert cfg["prefixes"]["prov"] == "http://www.w3.org/ns/prov#"
    assert kb.test_run.ontology_version == "1.0.0"
    assert kb.graph.list_runs(1)[0].ontology_version == "1.0.0"


def test_domain_range_violations_are_quarantined_not_stored(kb):
    run = kb.test_run
    rows = kb.quarantine.list(limit=1000)
    assert run.quarantined == len({(r["source_id"], r["type"], r["target_id"]) for r in rows if r["origin"] == "ingest"})
    berlin = [r for r in rows if r["source_name"] == "Berlin"]
    assert len(berlin) == 1
    b = berlin[0]
    assert (b["type"], b["target_name"], b["source_class"], b["target_class"]) == ("worksFor", "Microsoft", "City", "Company")
    assert "domain of worksFor is Person" in b["reason"] and b["ontology_version"] == "1.0.0" and b["doc_id"]
    # never silently into the graph: no worksFor edge from Berlin, but the lawful one from the same text is there
    edges = kb.graph.query("MATCH (a:Entity)-[r:worksFor]->(b:Entity) RETURN a.name AS a, b.name AS b")
    assert ("Marie Dubois", "Microsoft") in {(e["a"], e["b"]) for e in edges}
    assert "Berlin" not in {e["a"] for e in edges}
    # every typed edge in the graph satisfies domain and range
    for r in kb.graph.query("MATCH (a:Entity)-[r]->(b:Entity) WHERE type(r) <> 'CO_OCCURS' "
                            "RETURN type(r) AS t, a.label AS a, b.label AS b"):
        assert kb.ontology.allows(r["t"], r["a"], r["b"]), r
    # the quarantine follows its document
    kb.pipeline.delete(b["doc_id"])
    assert kb.quarantine.count(doc_id=b["doc_id"]) == 0 and kb.quarantine.count() == len(rows) - 1


def test_violations_cli_lists_the_quarantine(kb):
    d = str(kb.settings.data_dir)
    kb.close()
    res = runner.invoke(app, ["ontology", "violations", "-d", d, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["total"] >= 1 and any(r["source_name"] == "Berlin" and r["type"] == "worksFor" for r in out["rows"])
    res = runner.invoke(app, ["ontology", "violations", "-d", d])
    assert res.exit_code == 0 and "Berlin" in res.output and "worksFor" in res.output


def test_shacl_report(kb, tmp_path):
    from kgfactory.ontology.loader import load_ontology
    from kgfactory.ontology.shacl import validate

    report = validate(kb.rdf)
    assert report.conforms and report.results == [] and report.shapes > 10 and report.triples > 100
    # the same graph against an ontology where only a Person may `uses` something: Helios and Nordlicht break it
    strict = load_ontology(_v2(tmp_path, drop_city=False, uses_domain="Person"))
    report = validate(kb.rdf, strict)
    assert not report.conforms
    broken = {r["focus_label"] for r in report.results}
    users = {r["a"] for r in kb.graph.query("MATCH (a:Entity)-[:uses]->(:Entity) RETURN DISTINCT a.name AS a")}
    assert broken == users and "Helios Robotics" in users
    assert all(r["message"] == "the subject of uses must be a Person" for r in report.results)
    assert "Helios Robotics" in report.text() and "violations" in report.text()


def test_validate_cli(kb, tmp_path):
    d = str(kb.settings.data_dir)
    kb.close()
    res = runner.invoke(app, ["ontology", "validate", "-d", d])
    assert res.exit_code == 0 and "conforms" in res.output, res.output
    res = runner.invoke(app, ["ontology", "validate", "-d", d, "--ontology", str(_v2(tmp_path, False, "Person"))])
    assert res.exit_code == 1 and "the subject of uses must be a Person" in res.output


def test_ontology_change_report_refuse_then_migrate(kb, tmp_path, make_services):
    d = kb.settings.data_dir
    cities = {r["name"] for r in kb.graph.query("MATCH (e:City) RETURN e.name AS name")}
    users = kb.graph.query("MATCH (a:Entity)-[:uses]->(b:Entity) RETURN a.name AS a, b.name AS b")
    assert cities and users
    kb.close()
    v2 = _v2(tmp_path, drop_city=True, uses_domain="Person")
    # a broken file changes nothing and names the file and line
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://x#> .\nex:A a ex:B ;\n ex:c .\n")
    res = runner.invoke(app, ["ontology", "load", str(bad), "-d", str(d)])
    assert res.exit_code == 2 and "bad.ttl" in res.output and "line" in res.output
    # misfits without an option: reported, nothing changes
    res = runner.invoke(app, ["ontology", "load", str(v2), "-d", str(d), "--json"])
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert rep["applied"] == "" and not rep["fits"]
    assert {n["name"] for n in rep["nodes"]} == cities and {n["migrate_to"] for n in rep["nodes"]} == {"Location"}
    assert {(e["source_name"], e["target_name"]) for e in rep["edges"]} == {(u["a"], u["b"]) for u in users}
    svc = make_services(data_dir=d)
    assert svc.ontology.version == "1.0.0" and "City" in svc.ontology.classes
    svc.close()
    # --migrate: cities become Locations, `uses` edges go to the quarantine, v2 is in force from now on
    res = runner.invoke(app, ["ontology", "load", str(v2), "-d", str(d), "--migrate", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["applied"] == "migrated"
    svc = make_services(data_dir=d)
    assert svc.ontology.version == "2.0.0" and "City" not in svc.ontology.classes
    lyon = svc.graph.query("MATCH (e:Entity {name: 'Lyon'}) RETURN labels(e) AS l, e.label AS label")[0]
    assert set(lyon["l"]) == {"Entity", "Location"} and lyon["label"] == "Location"
    assert svc.graph.query("MATCH ()-[r:uses]->() RETURN count(r) AS n")[0]["n"] == 0
    moved = [r for r in svc.quarantine.list(limit=1000) if r["origin"] == "ontology-change"]
    assert {(r["source_name"], r["target_name"]) for r in moved} == {(u["a"], u["b"]) for u in users}
    assert all(r["ontology_version"] == "2.0.0" and r["doc_id"] for r in moved)
    # the RDF view follows (rebuilt for the new ontology) and a new ingest records the new version
    assert not svc.rdf.query('ASK { ?e a <https://kgfactory.dev/ontology#City> ; a <https://kgfactory.dev/vocab#Entity> }').boolean
    assert svc.rdf.query('ASK { ?e <http://www.w3.org/2000/01/rdf-schema#label> "Lyon" ; a <https://kgfactory.dev/ontology#Location> }').boolean
    note = tmp_path / "new.txt"
    note.write_text("Priya Raman was born in Oslo.")
    assert svc.pipeline.ingest([str(note)]).ontology_version == "2.0.0"
    from kgfactory.ontology.evolution import read_graph_config

    assert read_graph_config(svc.graph)["config"]["ontology_version"] == "2.0.0"


def test_ontology_change_quarantine_mode(kb, tmp_path):
    d = str(kb.settings.data_dir)
    cities = {r["name"] for r in kb.graph.query("MATCH (e:City) RETURN e.name AS name")}
    kb.close()
    res = runner.invoke(app, ["ontology", "load", str(_v2(tmp_path)), "-d", d, "--quarantine", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(runner.invoke(app, ["ontology", "violations", "-d", d, "--json", "--limit", "1000"]).stdout)
    nodes = [r for r in out["rows"] if r["kind"] == "node"]
    assert {r["source_name"] for r in nodes} == cities and {r["source_class"] for r in nodes} == {"City"}
    res = runner.invoke(app, ["sparql", "SELECT ?n WHERE { ?e rdfs:label ?n ; a kgf:Concept, kgfv:Entity FILTER(?n = 'Lyon') }",
                              "-d", d, "--format", "csv"])
    assert res.exit_code == 0 and res.stdout.splitlines()[1:] == ["Lyon"], res.output


def test_show_and_sparql_cli(kb):
    d = str(kb.settings.data_dir)
    kb.close()
    res = runner.invoke(app, ["ontology", "show", "-d", d])
    assert res.exit_code == 0 and "1.0.0" in res.output and "worksFor" in res.output and "Location" in res.output
    q = "SELECT ?name WHERE { ?e a kgf:Person ; rdfs:label ?name } ORDER BY ?name"
    res = runner.invoke(app, ["sparql", q, "-d", d])
    assert res.exit_code == 0 and "Marie Dubois" in res.output and "rows" in res.output
    res = runner.invoke(app, ["sparql", q, "-d", d, "--format", "json", "--limit", "2"])
    assert res.exit_code == 0
    assert len(json.loads(res.stdout)["results"]["bindings"]) == 2 and "truncated" in res.stderr
    res = runner.invoke(app, ["sparql", "CONSTRUCT WHERE { ?e a kgf:Person }", "-d", d])
    assert res.exit_code == 0 and "kgf:Person" in res.stdout
    res = runner.invoke(app, ["sparql", "DELETE WHERE { ?s ?p ?o }", "-d", d])
    assert res.exit_code == 2 and "read-only" in res.output
    res = runner.invoke(app, ["ontology", "export", "-d", d, "--format", "ntriples"])
    assert res.exit_code == 0 and "<http://www.w3.org/ns/prov#wasDerivedFrom>" in res.stdout
