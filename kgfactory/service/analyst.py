"""Analysts' reads for one tenant: read-only Cypher on the tenant's view, SPARQL on its named graph, the graph
schema and the ontology (entities and the explorer's reads: explorer.py).

Cypher never runs on the shared graph: graph/cypher_guard.py refuses write clauses, LOAD CSV, non-read
procedures and text too long or deep for the parser; the rest runs read-only on a copy of the graph holding only
the caller's tenant (graph/falkordb_views.py), with a timeout and a row cap, so `MATCH (n) RETURN count(n)` counts
the caller's nodes only.
"""
from __future__ import annotations

import json
import time
from typing import Any

from ..errors import CypherQueryError, CypherTimeout, InvalidInputError
from .results import CypherResult, GraphSchema, SparqlResult
from .status import NotAvailableError


class Analyst:
    """Mixin of KnowledgeService: needs `services` and `tenant`."""

    services: Any
    tenant: str

    def cypher(self, query: str, params: dict[str, Any] | None = None, *, timeout_ms: int | None = None,
               max_rows: int | None = None) -> CypherResult:
        """Rows of a read-only query over this tenant's view. Refused: CypherRefusedError; failed in the engine:
        CypherQueryError; past the timeout: CypherTimeout; view not buildable: ViewBuildError."""
        from ..graph import cypher_guard

        s = self.services.settings
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query: give the Cypher text")
        if params is not None and not isinstance(params, dict):
            raise InvalidInputError("params: a mapping of parameter names to values")
        for name, v in (("timeout_ms", timeout_ms), ("max_rows", max_rows)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InvalidInputError(f"{name} {v!r}: a whole number of at least 1")
        cypher_guard.check(query, max_chars=s.cypher_max_chars, max_depth=s.cypher_max_depth)
        views = self._views()
        timeout = min(timeout_ms or s.cypher_timeout_ms, s.cypher_timeout_ms)
        cap = min(max_rows or s.cypher_max_rows, s.cypher_max_rows)
        t = time.perf_counter()
        try:
            cols, rows, truncated = views.run(query, params or {}, self.tenant, timeout, cap)
        except CypherTimeout as e:  # the class says whose fault it is; the prefix says what failed
            raise CypherTimeout(f"Cypher timed out: {e}") from e
        except CypherQueryError as e:
            raise CypherQueryError(f"Cypher failed: {e}") from e
        return CypherResult(columns=cols, rows=rows, row_count=len(rows), truncated=truncated, tenant=self.tenant,
                            elapsed_ms=round((time.perf_counter() - t) * 1000, 3))

    def _views(self) -> Any:
        from ..bootstrap import build_cypher_views

        views = build_cypher_views(self.services)
        if views is None:
            raise NotAvailableError("analyst Cypher needs the FalkorDB or Neo4j graph backend")
        return views

    def sparql_query(self, query: str, *, default_graph_uris: list[str] | None = None,
                     named_graph_uris: list[str] | None = None) -> Any:
        """The RDF view's result for this tenant's named graph (`kind`, `serialize(format)`): the SPARQL protocol
        endpoint serializes it as the client asks. Updates, syntax errors, timeouts and graph names outside the
        tenant (`*_graph_uris`, the protocol's dataset) raise SparqlError."""
        rdf = getattr(self.services, "rdf", None)
        if rdf is None:
            raise NotAvailableError("SPARQL is not available: the RDF layer is not configured in this build")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("no SPARQL query")
        return rdf.query(query, tenant=self.tenant, default_graph_uris=default_graph_uris or (),
                         named_graph_uris=named_graph_uris or ())

    def sparql(self, query: str) -> SparqlResult:
        """SELECT/ASK as SPARQL JSON bindings; CONSTRUCT/DESCRIBE as Turtle."""
        result = self.sparql_query(query)
        if result.kind in ("construct", "describe"):
            content, _ = result.serialize("turtle")
            return SparqlResult(kind="graph", graph=content if isinstance(content, str) else content.decode())
        content, _ = result.serialize("json")
        return SparqlResult.from_json(json.loads(content))

    def ontology(self) -> dict[str, Any]:
        """The OWL ontology the graph is typed by: classes, object and datatype properties, individuals."""
        return self.services.ontology.model_dump(mode="json")

    def graph_schema(self) -> GraphSchema:
        """Node labels and relationship types in this tenant's graph, with counts."""
        labels, rels = self.services.graph.schema_counts(self.tenant)
        return GraphSchema(tenant=self.tenant, labels=labels, relationship_types=rels)

