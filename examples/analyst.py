"""An analyst's notebook-style script: the graph's shape, Cypher for the property graph, SPARQL for the ontology-
typed RDF view, and an entity's neighbourhood. Read-only: write clauses are refused.

    python examples/analyst.py          # over $KGF_DATA_DIR (ingests the sample corpus when empty)
"""
from pathlib import Path

import kgfactory
from kgfactory.sdk import NotAvailableError


def table(rows: list[dict], limit: int = 10) -> None:
    for r in rows[:limit]:
        print("   ", " | ".join(f"{k}={v}" for k, v in r.items()))


with kgfactory.KnowledgeBase.open() as kb:
    if not kb.documents():
        kb.ingest(Path(kgfactory.__file__).parent / "samples" / "corpus")

    # 1. What is in the graph: node labels (ontology classes) and relationship types, with counts
    schema = kb.graph_schema()
    print("labels:", schema["labels"])
    print("relationships:", schema["relationship_types"])

    # 2. Cypher: typed facts between entities (relationship types come from the ontology's object properties)
    print("\nCypher: typed relations")
    facts = kb.cypher("MATCH (a:Entity)-[r]->(b:Entity) WHERE type(r) <> 'CO_OCCURS' "
                      "RETURN a.name AS subject, type(r) AS relation, b.name AS object ORDER BY subject, object")
    table(facts.records())

    # 3. Cypher with parameters: the most-mentioned organisations and how many chunks mention them
    print("\nCypher: organisations by mentions")
    orgs = kb.cypher("MATCH (c:Chunk)-[:MENTIONS]->(e:Organization) RETURN e.id AS id, e.name AS name, "
                     "count(c) AS chunks ORDER BY chunks DESC, name LIMIT $n", {"n": 5})
    table(orgs.records())

    # 4. SPARQL over the RDF view: organisations by ontology class, subclasses included (RDFS reasoning by path)
    print("\nSPARQL: organisations and their classes")
    try:
        res = kb.sparql("""
            PREFIX kgf: <https://kgfactory.dev/ontology#>
            PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
            SELECT DISTINCT ?name ?class WHERE {
              ?e a ?cls ; rdfs:label ?name . ?cls rdfs:subClassOf* kgf:Organization ; rdfs:label ?class .
            } ORDER BY ?name ?class""")
        table(res.rows())
    except NotAvailableError as e:
        print("    not available in this build:", e)

    # 5. Follow one entity: its neighbours in the graph and the chunks that mention it
    if orgs.rows:
        top = orgs.records()[0]
        ent = kb.entity(top["id"])
        print(f"\n{ent.name} ({ent.label}): neighbours")
        table([{"relation": n["type"], "name": n["name"], "class": n["label"]} for n in ent.neighbours], 8)
        print(f"mentioned in {len(ent.mentions)} chunks")
