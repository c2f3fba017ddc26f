"""Analyst Cypher on Neo4j (graph/neo4j_views.py): the decision of where a tenant's query may run, checked here as
pure functions (edition from `dbms.components()` rows, isolation per edition and key scope, the database name,
the all-tenants key scope and the 403 it maps to); and the engine behaviour (READ transactions Neo4j enforces,
timeout, row cap, all-tenant reads, the refusal on Community) against a Neo4j container, which skips with its
reason when no Docker engine answers."""
from __future__ import annotations

import re

import pytest

from kgfactory.api.keys import KeyStore
from kgfactory.errors import ConfigError, CypherQueryError, CypherTimeout, TenantScopeError
from kgfactory.graph.neo4j_views import Isolation, edition_of, isolation_for, view_database
from kgfactory.service.status import status_of
from kgfactory.types import ALL_TENANTS

COMMUNITY = [{"name": "Neo4j Kernel", "versions": ["5.26.0"], "edition": "community"}]
ENTERPRISE = [{"name": "Neo4j Kernel", "versions": ["5.26.0"], "edition": "enterprise"}]


def test_edition_of_components_rows():
    assert edition_of(COMMUNITY) == "community"
    assert edition_of(ENTERPRISE) == "enterprise"
    # Aura answers as an enterprise kernel, sometimes with other components listed first
    assert edition_of([{"name": "Neo4j GDS", "versions": ["2"], "edition": "enterprise"},
                       {"name": "Neo4j Kernel", "versions": ["5.27-aura"], "edition": "Enterprise"}]) == "enterprise"
    assert edition_of([]) == "unknown"
    assert edition_of([{"name": "Neo4j Kernel", "versions": ["5"], "edition": "mystery"}]) == "unknown"


def test_isolation_decision():
    assert isolation_for("community", ALL_TENANTS, "neo4j") == Isolation("shared", "neo4j")
    assert isolation_for("enterprise", ALL_TENANTS, "kb") == Isolation("shared", "kb")
    iso = isolation_for("enterprise", "acme", "neo4j")
    assert iso.mode == "database" and iso.database == view_database("acme") != "neo4j"
    for edition in ("community", "unknown"):  # no proof of per-tenant databases: refused, never the shared one
        with pytest.raises(TenantScopeError) as e:
            isolation_for(edition, "acme", "neo4j")
        msg = str(e.value)
        assert "'acme'" in msg and "--tenant '*' --role analyst" in msg and "Enterprise" in msg
        assert status_of(e.value) == (403, "forbidden")


def test_view_database_names():
    names = {view_database(t) for t in ("acme", "Acme", "globex", "a.b-c_d")}
    assert len(names) == 4  # Neo4j names are case-insensitive: the hash keeps 'Acme' and 'acme' apart
    for n in names:  # Neo4j 5's rule for database names
        assert re.fullmatch(r"[a-z][a-z0-9.-]{2,62}", n)


def test_all_tenant_keys_are_analyst_only(tmp_path):
    ks = KeyStore(tmp_path / "keys.sqlite")
    try:
        key, rec = ks.create("ops", ALL_TENANTS, ["analyst"])
        p = ks.verify(key)
        assert p is not None and p.tenant == ALL_TENANTS and p.roles == frozenset({"analyst"})
        for roles in (["admin"], ["ingester"], ["reader"], ["analyst", "admin"]):
            with pytest.raises(ConfigError, match="analyst role only"):
                ks.create("ops", ALL_TENANTS, roles)
        for bad in ("**", "*acme", " *"):
            with pytest.raises(ConfigError, match="not valid"):
                ks.create("x", bad, ["analyst"])
    finally:
        ks.close()


# --- against a Neo4j server (Community, as the container image is) --------------------------------------------
@pytest.fixture(scope="module")
def neo4j_views(neo4j_container):
    from kgfactory.graph.neo4j_store import Neo4jGraphStore
    from kgfactory.graph.neo4j_views import Neo4jTenantViews

    c = neo4j_container
    store = Neo4jGraphStore(c.get_connection_url(), c.username, c.password)
    store._run("MATCH (n:Entity) WHERE n.id IN ['nv_a', 'nv_b'] DETACH DELETE n")
    store._run("CREATE (:Entity {id: 'nv_a', tenant: 'acme', name: 'Ada Park'}), "
               "(:Entity {id: 'nv_b', tenant: 'globex', name: 'Hank Scorpio'})")
    yield Neo4jTenantViews(store, max_timeout_ms=5000)
    store._run("MATCH (n:Entity) WHERE n.id IN ['nv_a', 'nv_b'] DETACH DELETE n")
    store.close()


@pytest.mark.timeout(600)
def test_neo4j_views_on_community(neo4j_views):
    v = neo4j_views
    assert v.edition() == "community"
    q = "MATCH (n:Entity) WHERE n.id IN ['nv_a', 'nv_b'] RETURN n.name AS name ORDER BY name"
    cols, rows, truncated = v.run(q, {}, ALL_TENANTS, 5000, 100)
    assert cols == ["name"] and rows == [["Ada Park"], ["Hank Scorpio"]] and not truncated
    with pytest.raises(TenantScopeError, match="cannot be confined to one tenant"):
        v.run(q, {}, "acme", 5000, 100)
    # row cap and parameters
    cols, rows, truncated = v.run("UNWIND range(1, $n) AS x RETURN x", {"n": 50}, ALL_TENANTS, 5000, 10)
    assert [r[0] for r in rows] == list(range(1, 11)) and truncated
    # Neo4j itself refuses a write in the READ transaction (past the text check, which would refuse it first)
    with pytest.raises(CypherQueryError):
        v._read(v.store.database, "CREATE (n:KgfWriteProbe) RETURN n", {}, 5000, 10)
    assert v.store._rows("MATCH (n:KgfWriteProbe) RETURN count(n) AS c")[0]["c"] == 0
    with pytest.raises(CypherTimeout):
        v.run("UNWIND range(1, 200000000) AS x WITH x WHERE x % 7 = 3 RETURN count(x)", {}, ALL_TENANTS, 100, 10)
    with pytest.raises(CypherQueryError):
        v.run("MATCH (n RETURN n", {}, ALL_TENANTS, 5000, 10)
