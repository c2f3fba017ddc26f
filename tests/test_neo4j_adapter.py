"""What of the Neo4j adapter can be checked without a Neo4j server (none can run here: no Java, no Docker):
startup errors from the real driver, version gate, error classification with the driver's own exception types,
and the Neo4j dialect's schema. The adapter's behaviour against a server is the graph-store contract suite's
neo4j-container leg (tests/test_graph_store_contract.py) and tests/test_stack_integration.py."""
from __future__ import annotations

import re
import time

import pytest

from _servers import free_port
from kgfactory.errors import ConfigError, GraphStoreError
from kgfactory.graph import cypher as Q
from kgfactory.graph.neo4j_store import Neo4jGraphStore, check_version, classify, wrap_error


def _neo4j_error(code: str, message: str = "m"):
    from neo4j.exceptions import Neo4jError

    return Neo4jError._hydrate_neo4j(code=code, message=message)  # as the driver builds it from a server FAILURE


class TestStartupErrors:
    def test_unreachable_server_names_the_setting(self):
        uri = f"bolt://127.0.0.1:{free_port()}"  # nothing listens there
        t = time.perf_counter()
        with pytest.raises(ConfigError, match=r"cannot reach Neo4j at .*KGF_NEO4J_URI"):
            Neo4jGraphStore(uri, "neo4j", "secret", connect_timeout_s=3)
        assert time.perf_counter() - t < 10

    def test_missing_password_is_refused_before_connecting(self):
        with pytest.raises(ConfigError, match="KGF_NEO4J_PASSWORD is empty"):
            Neo4jGraphStore("bolt://127.0.0.1:7687", "neo4j", "")

    @pytest.mark.parametrize("uri", ["", "http://127.0.0.1:7474", "localhost:7687", "boltx://h:1"])
    def test_bad_uri_names_the_setting(self, uri):
        with pytest.raises(ConfigError, match="KGF_NEO4J_URI"):
            Neo4jGraphStore(uri, "neo4j", "secret")

    def test_bootstrap_picks_neo4j_from_settings(self, tmp_path, ontology):
        from kgfactory.bootstrap import build_graph_store
        from kgfactory.settings import Settings

        s = Settings(data_dir=tmp_path, graph_backend="neo4j", neo4j_uri=f"bolt://127.0.0.1:{free_port()}",
                     neo4j_password="secret")
        with pytest.raises(ConfigError, match="KGF_NEO4J_URI"):
            build_graph_store(s, ontology)

    def test_settings_read_the_env(self, monkeypatch, tmp_path):
        from kgfactory.settings import Settings

        monkeypatch.setenv("KGF_GRAPH_BACKEND", "neo4j")
        monkeypatch.setenv("KGF_NEO4J_URI", "neo4j://db:7687")
        monkeypatch.setenv("KGF_NEO4J_DATABASE", "kb")
        s = Settings(data_dir=tmp_path)
        assert (s.graph_backend, s.neo4j_uri, s.neo4j_database, s.neo4j_user) == ("neo4j", "neo4j://db:7687", "kb", "neo4j")


class TestVersionGate:
    def test_neo4j_5_passes(self):
        assert check_version("Neo4j/5.26.0") == (5, 26)
        assert check_version("Neo4j/2025.01.0") == (2025, 1)  # calendar versions after 5.26

    @pytest.mark.parametrize("agent", ["Neo4j/4.4.30", "Neo4j/3.5.0"])
    def test_older_servers_are_a_startup_error(self, agent):
        with pytest.raises(ConfigError, match=r"KGF_NEO4J_URI.*needs Neo4j 5"):
            check_version(agent, "bolt://x:7687")

    def test_other_servers_are_refused(self):
        with pytest.raises(ConfigError, match="not a Neo4j server"):
            check_version("Memgraph/2.1", "bolt://x:7687")


class TestErrorClassification:
    def test_kinds(self):
        from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

        assert classify(AuthError("bad credentials")) == "auth"
        assert classify(ServiceUnavailable("gone")) == "unavailable"
        assert classify(SessionExpired("leader switched")) == "unavailable"
        assert classify(_neo4j_error("Neo.TransientError.Transaction.DeadlockDetected")) == "transient"
        assert classify(_neo4j_error("Neo.ClientError.Database.DatabaseNotFound")) == "database"
        assert classify(_neo4j_error("Neo.ClientError.Statement.SyntaxError")) == "error"
        assert classify(ValueError("x")) == "error"

    def test_settings_problems_name_the_setting(self):
        from neo4j.exceptions import AuthError

        e = wrap_error(AuthError("The client is unauthorized"), "bolt://h:7687", "kb", "alice")
        assert isinstance(e, ConfigError) and "KGF_NEO4J_PASSWORD" in str(e) and "alice" in str(e)
        e = wrap_error(_neo4j_error("Neo.ClientError.Database.DatabaseNotFound"), "bolt://h:7687", "kb")
        assert isinstance(e, ConfigError) and "KGF_NEO4J_DATABASE" in str(e) and "'kb'" in str(e)

    def test_lost_server_mid_run_says_resumable(self):
        from neo4j.exceptions import ServiceUnavailable

        e = wrap_error(ServiceUnavailable("connection lost"), "bolt://h:7687", "neo4j")
        assert isinstance(e, GraphStoreError) and "resumable" in str(e)
        e = wrap_error(_neo4j_error("Neo.TransientError.General.OutOfMemoryError"), "bolt://h:7687", "neo4j")
        assert isinstance(e, GraphStoreError) and "after retries" in str(e)


class TestNeo4jDialect:
    schema = Q.DIALECTS["neo4j"]["indexes"]

    def test_schema_is_idempotent_ddl(self):
        assert self.schema and all(" IF NOT EXISTS " in s for s in self.schema)
        names = [re.match(r"CREATE (?:CONSTRAINT|(?:FULLTEXT )?INDEX) (\w+) ", s).group(1) for s in self.schema]
        assert len(names) == len(set(names))

    def test_ids_are_unique_for_every_merged_label(self):
        unique = {m.group(1) for s in self.schema
                  if (m := re.search(r"FOR \(n:(\w+)\) REQUIRE n\.id IS UNIQUE", s))}
        merged = set(re.findall(r"MERGE \(\w+:(\w+) \{id:", "\n".join(
            v for k, v in vars(Q).items() if k.isupper() and isinstance(v, str))))
        assert merged <= unique, f"MERGE on {merged - unique} without a uniqueness constraint"

    def test_fulltext_covers_names_and_aliases(self):
        ft = [s for s in self.schema if "FULLTEXT" in s]
        assert ft == ["CREATE FULLTEXT INDEX kgf_entity_names IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.aliases]"]


def test_shared_statements_take_values_only_as_parameters():
    """No value reaches shared Cypher as text: the only literals are fixed words written in cypher.py (statuses,
    the meta id, a relationship type), and the only template slots are labels/types (filled through check_name
    from the ontology allow-list)."""
    for name, stmt in vars(Q).items():
        if not (name.isupper() and isinstance(stmt, str) and re.search(r"\b(MATCH|MERGE|UNWIND)\b", stmt)):
            continue
        literals = {x for x in re.findall(r"'[^']*'", stmt) if not re.fullmatch(r"'[A-Za-z_]+'", x)}
        assert not literals, f"{name} has inline literals {literals}"
        # a template slot takes a label/type clause, never a value: it stands where a label or type goes
        for slot in re.finditer(r"(?<!\{)\{(\w+)\}(?!\})", stmt):
            before = stmt[:slot.start()].rstrip()
            assert before.endswith((":", "(n", "e", "[x")) or re.search(r"(SET|REMOVE) \w+$", before), (name, slot.group())
    assert Q.MERGE_RELATIONS.format(rel=Q.rel_type("WORKS_FOR")).count("`WORKS_FOR`") == 1
    with pytest.raises(GraphStoreError, match="not a plain identifier"):
        Q.label_clause(["City`) DETACH DELETE n //"])
