"""All Cypher lives here, always parameterised.

Labels and relationship types cannot be parameters in Cypher, so the few statements that need them are
templates filled by `label_clause`/`rel_type`, which accept only names that pass `check_name` and that the
caller took from the ontology allow-list, never from request text.

The statements below are shared by FalkorDB and Neo4j. What differs (index DDL, constraints) is in DIALECTS.
Dates are stored as ISO-8601 strings and metadata as JSON strings so both engines hold the same values.
"""
from __future__ import annotations

import re

from ..errors import GraphStoreError
from . import cypher_guard

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise GraphStoreError(f"refusing label/type {name!r}: not a plain identifier")
    return name


def label_clause(labels: list[str]) -> str:
    """':A:B' for SET e:A:B (names already allow-listed by the caller)."""
    return "".join(f":`{check_name(l)}`" for l in labels)


def rel_type(name: str) -> str:
    return f"`{check_name(name)}`"


# --- documents -------------------------------------------------------------------------------
BEGIN_DOCUMENTS = """
UNWIND $rows AS r
MERGE (d:Document {id: r.id})
SET d.source = r.source, d.title = r.title, d.mime = r.mime, d.tenant = r.tenant, d.tags = r.tags,
    d.metadata = r.metadata, d.ingested_at = r.ingested_at, d.status = 'pending', d.uri = r.uri
"""

COMPLETE_DOCUMENTS = """
UNWIND $rows AS r
MATCH (d:Document {id: r.id})
SET d.status = 'complete', d.chunk_count = r.chunks, d.entity_count = r.entities, d.run_id = r.run_id
RETURN DISTINCT d.tenant AS tenant
"""

SET_DOCUMENT_STATUS = "MATCH (d:Document {id: $id}) SET d.status = $status"

DOC_FIELDS = ("d.id AS id, d.source AS source, d.title AS title, d.mime AS mime, d.tenant AS tenant, "
              "d.tags AS tags, d.metadata AS metadata, d.ingested_at AS ingested_at, d.status AS status, "
              "d.chunk_count AS chunk_count, d.entity_count AS entity_count, "
              "d.run_id AS run_id")

GET_DOCUMENT = f"MATCH (d:Document {{id: $id}}) RETURN {DOC_FIELDS}"

DOCUMENTS_BY_SOURCE = f"MATCH (d:Document {{source: $source, tenant: $tenant}}) RETURN {DOC_FIELDS}"

LIST_DOCUMENTS = f"""
MATCH (d:Document)
WHERE ($tenant IS NULL OR d.tenant = $tenant) AND ($status IS NULL OR d.status = $status)
RETURN {DOC_FIELDS} ORDER BY d.source, d.id
"""

# --- chunks ----------------------------------------------------------------------------------
WRITE_CHUNKS = """
UNWIND $rows AS r
MATCH (d:Document {id: r.doc_id})
MERGE (c:Chunk {id: r.id})
SET c.doc_id = r.doc_id, c.tenant = r.tenant, c.index = r.index, c.text = r.text, c.start = r.start,
    c.end = r.end, c.page = r.page, c.uri = r.uri
MERGE (d)-[:HAS_CHUNK]->(c)
"""

LINK_NEXT = """
UNWIND $pairs AS p
MATCH (a:Chunk {id: p[0]}), (b:Chunk {id: p[1]})
MERGE (a)-[:NEXT]->(b)
"""

DOC_CHUNK_IDS = "MATCH (:Document {id: $id})-[:HAS_CHUNK]->(c:Chunk) RETURN c.id AS id"

# --- entities, mentions, relations -----------------------------------------------------------
MERGE_ENTITIES = """
UNWIND $rows AS r
MERGE (e:Entity {id: r.id})
ON CREATE SET e.name = r.name, e.label = r.label, e.tenant = r.tenant, e.aliases = r.aliases,
              e.uri = r.uri, e.found_by = r.source
ON MATCH SET e.aliases = e.aliases + [a IN r.aliases WHERE NOT a IN e.aliases]
"""

# template: labels filled from the ontology allow-list
SET_ENTITY_LABELS = "UNWIND $ids AS id MATCH (e:Entity {{id: id}}) SET e{labels}"

MERGE_MENTIONS = """
UNWIND $rows AS r
MATCH (c:Chunk {id: r.chunk_id}), (e:Entity {id: r.entity_id})
MERGE (c)-[m:MENTIONS]->(e)
SET m.count = r.count, m.subject = r.subject
"""

# template: relationship type filled from the ontology allow-list (or CO_OCCURS)
MERGE_RELATIONS = """
UNWIND $rows AS r
MATCH (a:Entity {{id: r.source_id}}), (b:Entity {{id: r.target_id}})
MERGE (a)-[x:{rel}]->(b)
ON CREATE SET x.chunk_ids = []
WITH x, x.chunk_ids + [c IN r.chunk_ids WHERE NOT c IN x.chunk_ids] AS merged
SET x.chunk_ids = merged, x.weight = size(merged)
"""

# --- delete ----------------------------------------------------------------------------------
ENTITIES_OF_CHUNKS = """
MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) WHERE c.id IN $cids RETURN DISTINCT e.id AS id
"""

PRUNE_RELATION_PROVENANCE = """
MATCH (a:Entity)-[x]->(b:Entity)
WHERE a.id IN $eids AND x.chunk_ids IS NOT NULL AND any(c IN x.chunk_ids WHERE c IN $cids)
WITH x, [c IN x.chunk_ids WHERE NOT c IN $cids] AS kept
SET x.chunk_ids = kept, x.weight = size(kept)
"""

DELETE_UNSUPPORTED_RELATIONS = """
MATCH (a:Entity)-[x]->(:Entity)
WHERE a.id IN $eids AND x.chunk_ids IS NOT NULL AND size(x.chunk_ids) = 0
DELETE x
"""

DELETE_CHUNKS = "MATCH (c:Chunk) WHERE c.id IN $cids DETACH DELETE c"

DELETE_DOCUMENT = "MATCH (d:Document {id: $id}) DETACH DELETE d"

DELETE_ORPHAN_ENTITIES = """
MATCH (e:Entity) WHERE e.id IN $eids
OPTIONAL MATCH (e)<-[m:MENTIONS]-(:Chunk)
WITH e, count(m) AS n
WHERE n = 0
WITH e, e.id AS id
DETACH DELETE e
RETURN id
"""

# --- export for the retriever's in-memory adjacency -----------------------------------------------
EXPORT_MENTIONS = """
MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity)
WHERE $tenant IS NULL OR c.tenant = $tenant
RETURN c.id AS chunk_id, e.id AS entity_id, m.count AS count, m.subject AS subject
"""

EXPORT_ENTITY_EDGES = """
MATCH (a:Entity)-[r]->(b:Entity)
WHERE $tenant IS NULL OR a.tenant = $tenant
RETURN a.id AS source_id, b.id AS target_id, type(r) AS type, r.weight AS weight
"""

GET_CHUNKS = """
MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) WHERE c.id IN $ids
RETURN c.id AS id, c.doc_id AS doc_id, c.index AS index, c.text AS text, c.start AS start, c.end AS end,
       c.page AS page, d.title AS title, d.source AS source, d.tags AS tags, d.tenant AS tenant
"""

NEIGHBOUR_CHUNKS = """
MATCH (c:Chunk) WHERE c.id IN $ids
OPTIONAL MATCH (p:Chunk)-[:NEXT]->(c)
OPTIONAL MATCH (c)-[:NEXT]->(n:Chunk)
RETURN c.id AS id, p.id AS prev_id, n.id AS next_id
"""

CHUNK_ENTITIES = """
MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) WHERE c.id IN $ids
RETURN c.id AS chunk_id, e.id AS id, e.name AS name, e.label AS label
"""

EXPORT_CHUNKS = """
MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk)
WHERE d.status = 'complete' AND ($tenant IS NULL OR d.tenant = $tenant)
RETURN c.id AS id, d.id AS doc_id, d.tenant AS tenant, d.tags AS tags
"""

EXPORT_ENTITIES = """
MATCH (e:Entity) WHERE $tenant IS NULL OR e.tenant = $tenant
RETURN e.id AS id, e.name AS name, e.aliases AS aliases, e.label AS label, e.tenant AS tenant,
       e.found_by AS found_by
"""

# --- delta reads for the retriever's incremental refresh (only what an ingest or delete touched) --------
EXPORT_CHUNKS_OF_DOCUMENTS = """
UNWIND $ids AS id
MATCH (d:Document {id: id})-[:HAS_CHUNK]->(c:Chunk)
WHERE d.status = 'complete'
RETURN c.id AS id, d.id AS doc_id, d.tenant AS tenant, d.tags AS tags
"""

EXPORT_MENTIONS_OF_CHUNKS = """
UNWIND $ids AS id
MATCH (c:Chunk {id: id})-[m:MENTIONS]->(e:Entity)
RETURN c.id AS chunk_id, e.id AS entity_id, m.count AS count, m.subject AS subject
"""

EXPORT_ENTITIES_BY_ID = """
UNWIND $ids AS id
MATCH (e:Entity {id: id})
RETURN e.id AS id, e.name AS name, e.aliases AS aliases, e.label AS label, e.tenant AS tenant,
       e.found_by AS found_by
"""

# two index lookups instead of `a.id IN $ids OR b.id IN $ids`, which scans every relationship; an edge
# with both ends in $ids comes back once (from the outgoing side)
EXPORT_EDGES_FROM = """
UNWIND $ids AS id
MATCH (a:Entity {id: id})-[r]->(b:Entity)
RETURN a.id AS source_id, b.id AS target_id, type(r) AS type, r.weight AS weight
"""

# WITH b fences the index lookup: without it FalkorDB pushes the NOT filter down and label-scans every
# entity (measured 116 ms vs 1.7 ms at 20k chunks)
EXPORT_EDGES_TO = """
UNWIND $ids AS id
MATCH (b:Entity {id: id})
WITH b
MATCH (a:Entity)-[r]->(b)
WHERE NOT a.id IN $ids
RETURN a.id AS source_id, b.id AS target_id, type(r) AS type, r.weight AS weight
"""

# 'revision' is bumped once by every write that completes and every delete, so readers know when to reload
# their caches. Writes of the store also bump 'revision:tenant:<t>' for each tenant they touched; writes that
# cannot say which tenants they touched (ontology changes, RDF imports) bump 'revision_all'. The analysts'
# tenant views (graph/falkordb_views.py) are rebuilt when their tenant's or the 'all' revision moved.
REVISION_ALL = "revision_all"
REVISION_TENANT = "revision:tenant:"
GET_REVISION = "MATCH (m:KGMeta {id: 'revision'}) RETURN m.value AS value"
GET_REVISIONS = "UNWIND $keys AS k OPTIONAL MATCH (m:KGMeta {id: k}) RETURN k AS key, m.value AS value"
TENANT_OF_DOCUMENT = "MATCH (d:Document {id: $id}) RETURN d.tenant AS tenant"

# The change log: one :KGChange node per move of the global revision, created in the same statement that moves
# it, so a process that did not write reads which documents changed (retrieval/index_upkeep.py) instead of
# reloading. kind: 'write' (a group of documents completed), 'delete' (one document), 'all' (an ontology change or
# RDF import: no document list, readers reload). Tenants' revisions move in the same statement (FOREACH, so an
# empty $keys keeps the row). Entries at or below revision - retention are trimmed by the writer.
LOG_CHANGE = """
MERGE (m:KGMeta {id: 'revision'})
SET m.value = coalesce(m.value, 0) + 1
WITH m
CREATE (c:KGChange {revision: m.value, kind: $kind, doc_ids: $doc_ids, tenants: $tenants, at: $at})
FOREACH (k IN $keys | MERGE (t:KGMeta {id: k}) SET t.value = coalesce(t.value, 0) + 1)
RETURN m.value AS revision
"""
TRIM_CHANGES = "MATCH (c:KGChange) WHERE c.revision <= $upto DELETE c"
# the store's revision and the entries after $after in one statement (one transaction: on a Neo4j cluster one
# member answers both, so a secondary that lags cannot pair a newer revision with an older log); at most $limit
CHANGES_SINCE = """
MATCH (m:KGMeta {id: 'revision'})
OPTIONAL MATCH (c:KGChange) WHERE c.revision > $after AND c.revision <= $after + $limit AND c.revision <= m.value
RETURN m.value AS current, c.revision AS revision, c.kind AS kind, c.doc_ids AS doc_ids, c.tenants AS tenants,
       c.at AS at
ORDER BY revision
"""

# --- runs and stats --------------------------------------------------------------------------
RECORD_RUN = """
MERGE (r:IngestRun {id: $id})
SET r.started_at = $started_at, r.finished_at = $finished_at, r.body = $body
"""

LIST_RUNS = "MATCH (r:IngestRun) RETURN r.id AS id, r.started_at AS started_at, r.body AS body ORDER BY r.started_at DESC LIMIT $limit"

COUNT_LABEL = "MATCH (n:{label}) RETURN count(n) AS n"

COUNT_REL_TYPES = "MATCH ()-[r]->() RETURN type(r) AS type, count(r) AS n"

# documents read from one file: the file itself, or its records (source "<file>#<i>")
COUNT_DOCUMENTS_FROM_FILE = """
MATCH (d:Document) WHERE d.tenant = $tenant AND (d.source = $path OR d.source STARTS WITH $prefix)
RETURN count(d) AS n
"""

# documents not (yet) complete, and their chunks: stats shows them apart from the knowledge that is complete
COUNT_UNFINISHED_DOCUMENTS = """
MATCH (d:Document) WHERE d.status IN ['pending', 'deleting']
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
RETURN d.status AS status, count(DISTINCT d) AS documents, count(c) AS chunks
"""

# --- dialects: what the two engines do differently --------------------------------------------
DIALECTS: dict[str, dict[str, list[str]]] = {
    "falkordb": {
        # FalkorDB: CREATE INDEX errors when the index exists; the adapter ignores that error.
        "indexes": [
            "CREATE INDEX FOR (n:Document) ON (n.id)",
            "CREATE INDEX FOR (n:Document) ON (n.source)",
            "CREATE INDEX FOR (n:Chunk) ON (n.id)",
            "CREATE INDEX FOR (n:Chunk) ON (n.doc_id)",
            "CREATE INDEX FOR (n:Entity) ON (n.id)",
            "CREATE INDEX FOR (n:IngestRun) ON (n.id)",
            "CREATE INDEX FOR (n:KGChange) ON (n.revision)",
            "CALL db.idx.fulltext.createNodeIndex('Entity', 'name')",
        ],
    },
    "neo4j": {
        "indexes": [
            "CREATE CONSTRAINT kgf_document_id IF NOT EXISTS FOR (n:Document) REQUIRE n.id IS UNIQUE",
            "CREATE CONSTRAINT kgf_chunk_id IF NOT EXISTS FOR (n:Chunk) REQUIRE n.id IS UNIQUE",
            "CREATE CONSTRAINT kgf_entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
            "CREATE CONSTRAINT kgf_run_id IF NOT EXISTS FOR (n:IngestRun) REQUIRE n.id IS UNIQUE",
            "CREATE CONSTRAINT kgf_meta_id IF NOT EXISTS FOR (n:KGMeta) REQUIRE n.id IS UNIQUE",
            "CREATE INDEX kgf_document_source IF NOT EXISTS FOR (n:Document) ON (n.source, n.tenant)",
            "CREATE INDEX kgf_document_tenant IF NOT EXISTS FOR (n:Document) ON (n.tenant)",
            "CREATE INDEX kgf_chunk_doc IF NOT EXISTS FOR (n:Chunk) ON (n.doc_id)",
            "CREATE INDEX kgf_entity_tenant IF NOT EXISTS FOR (n:Entity) ON (n.tenant)",
            "CREATE INDEX kgf_change_revision IF NOT EXISTS FOR (n:KGChange) ON (n.revision)",
            # aliases is a LIST<STRING>: full-text indexes take those since Neo4j 5
            "CREATE FULLTEXT INDEX kgf_entity_names IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.aliases]",
        ],
    },
}

# the read-only check works on tokens (comments, strings and backticked names understood): graph/cypher_guard.py
is_write = cypher_guard.is_write


# --- HTTP API reads (kgfactory/api): every one carries the caller's tenant ------------------------
# analysts' Cypher runs on a per-tenant copy of the graph in a separate engine (graph/falkordb_views.py),
# built from these reads of the tenant's own nodes and of the edges between them. Only labels whose nodes
# carry a tenant are read, so bookkeeping (IngestRun, KGMeta) and other tenants never reach a view.
VIEW_LABELS = ("Document", "Chunk", "Entity")
# template: label filled from VIEW_LABELS only
VIEW_EXPORT_NODES = "MATCH (n:{label}) WHERE n.tenant = $tenant RETURN labels(n) AS labels, properties(n) AS props"
VIEW_EXPORT_EDGES = """
MATCH (a:{label})-[r]->(b) WHERE a.tenant = $tenant AND b.tenant = $tenant
RETURN a.id AS a, labels(b) AS b_labels, b.id AS b, type(r) AS type, properties(r) AS props
"""
# templates for the view graph: labels and types through label_clause/rel_type, taken from the source graph
VIEW_CREATE_NODES = "UNWIND $rows AS r CREATE (n{labels}) SET n += r"
VIEW_CREATE_EDGES = """
UNWIND $rows AS r
MATCH (a:{src} {{id: r.a}}), (b:{dst} {{id: r.b}})
CREATE (a)-[x:{rel}]->(b) SET x += r.props
"""

# analysts' Cypher on Neo4j (graph/neo4j_views.py): the edition decides how tenants are kept apart, and on
# Enterprise/Aura each tenant's copy is a database of its own, named by the adapter (parameters, not text)
NEO4J_COMPONENTS = "CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition"
NEO4J_VIEW_DB_CREATE = "CREATE OR REPLACE DATABASE $name WAIT"
NEO4J_VIEW_DB_DROP = "DROP DATABASE $name IF EXISTS"

API_ENTITY = """
MATCH (e:Entity {id: $id}) WHERE e.tenant = $tenant
RETURN e.id AS id, e.name AS name, e.label AS label, e.aliases AS aliases, labels(e) AS labels, e.found_by AS found_by
"""

API_ENTITY_NEIGHBOURS = """
MATCH (e:Entity {id: $id})-[r]-(n:Entity) WHERE e.tenant = $tenant AND n.tenant = $tenant
RETURN type(r) AS type, startNode(r).id = e.id AS outgoing, n.id AS id, n.name AS name, n.label AS label,
       r.weight AS weight
ORDER BY r.weight DESC, n.name LIMIT $limit
"""

API_ENTITY_CHUNKS = """
MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity {id: $id}) WHERE e.tenant = $tenant AND c.tenant = $tenant
RETURN c.id AS chunk_id, c.doc_id AS doc_id, m.count AS count ORDER BY c.doc_id, c.index LIMIT $limit
"""

API_SCHEMA_LABELS = "MATCH (n) WHERE n.tenant = $tenant RETURN labels(n) AS labels, count(n) AS n"

API_SCHEMA_RELS = "MATCH (a)-[r]->(b) WHERE a.tenant = $tenant AND b.tenant = $tenant RETURN type(r) AS type, count(r) AS n"


# --- `kgf migrate`: copy a graph between engines, page by page (keyset on id) -----------------------
# template: label filled from MIGRATE_LABELS only
MIGRATE_PAGE = "MATCH (n:{label}) WHERE n.id > $after RETURN n ORDER BY n.id LIMIT $limit"
MIGRATE_PAGE_IDS = "MATCH (n:{label}) WHERE n.id > $after RETURN n.id AS id ORDER BY n.id LIMIT $limit"
MIGRATE_LABELS = ("Document", "Chunk", "Entity", "IngestRun")

# template: label filled from MIGRATE_LABELS only; props are the source node's properties, as they were
MIGRATE_NODES = "UNWIND $rows AS r MERGE (n:{label} {{id: r.id}}) SET n += r.props"

MIGRATE_HAS_CHUNK = """
UNWIND $rows AS r
MATCH (d:Document {id: r.doc_id}), (c:Chunk {id: r.id})
MERGE (d)-[:HAS_CHUNK]->(c)
"""

MIGRATE_EXPORT_NEXT = "MATCH (a:Chunk)-[:NEXT]->(b:Chunk) WHERE a.id IN $ids RETURN a.id AS a, b.id AS b"

MIGRATE_EXPORT_RELATIONS = "MATCH (a:Entity)-[r]->(b:Entity) WHERE a.id IN $ids RETURN a.id AS source_id, b.id AS target_id, r AS r"

# template: relationship type filled through rel_type (check_name) from the source graph's types
MIGRATE_RELATIONS = """
UNWIND $rows AS r
MATCH (a:Entity {{id: r.source_id}}), (b:Entity {{id: r.target_id}})
MERGE (a)-[x:{rel}]->(b)
SET x += r.props
"""

MIGRATE_SET_REVISION = "MERGE (m:KGMeta {id: 'revision'}) SET m.value = $value"


# --- semantic layer (ontology/): the RDF view's rebuild, n10s-style graph config, ontology changes -------------
RDF_EXPORT_CHUNKS = """
MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) WHERE d.status = 'complete'
RETURN c.id AS id, c.doc_id AS doc_id, c.index AS index, c.start AS start, c.end AS end, c.page AS page,
       c.text AS text, d.tenant AS tenant
"""

RDF_EXPORT_ENTITIES = """
MATCH (e:Entity)
RETURN e.id AS id, e.name AS name, e.aliases AS aliases, e.found_by AS found_by, e.tenant AS tenant,
       e.label AS label, labels(e) AS labels
"""

RDF_EXPORT_RELATIONS = """
MATCH (a:Entity)-[r]->(b:Entity) WHERE type(r) <> 'CO_OCCURS'
RETURN a.id AS source_id, b.id AS target_id, type(r) AS type, r.chunk_ids AS chunk_ids, a.tenant AS tenant,
       a.name AS source_name, b.name AS target_name, a.label AS source_class, b.label AS target_class
"""

# n10s keeps its settings in a _GraphConfig node and namespace prefixes in a _NsPrefDef node
SET_GRAPH_CONFIG = "MERGE (c:_GraphConfig {_id: 1}) SET c += $config"
SET_NS_PREFIXES = "MERGE (p:_NsPrefDef {_id: 1}) SET p = $prefixes"
GET_GRAPH_CONFIG = "MATCH (c:_GraphConfig {_id: 1}) RETURN c AS config"
GET_NS_PREFIXES = "MATCH (p:_NsPrefDef {_id: 1}) RETURN p AS prefixes"

# template: old labels and new labels filled through label_clause from the stored graph / the ontology allow-list
RELABEL_ENTITIES = "UNWIND $ids AS id MATCH (e:Entity {{id: id}}) REMOVE e{old} SET e{new}, e.label = $label"

# template: relationship type filled through rel_type from the stored graph's types
DELETE_RELATION = "UNWIND $rows AS r MATCH (a:Entity {{id: r.source_id}})-[x:{rel}]->(b:Entity {{id: r.target_id}}) DELETE x"
