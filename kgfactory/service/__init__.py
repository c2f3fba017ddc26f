"""The application layer: each operation of the knowledge base (ask, search, ingest, documents, Cypher, SPARQL,
entities, schema) written once, under the API, the SDK's in-process `KnowledgeBase` and the CLI.

Kept light on purpose: `service.limits`, `service.walk`, `service.results` and `service.status` need only
pydantic, because the SDK's light install (httpx + pydantic) imports them. The layer itself is
`service.knowledge.KnowledgeService` (imported from there, never re-exported here).
"""
