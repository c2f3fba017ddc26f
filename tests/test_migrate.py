"""`kgf migrate` on real stores: an ingested embedded KB (FalkorDB + Milvus Lite) copied to a real Milvus 2.3.5
server plus a second embedded FalkorDB, answered from there, and copied back; the Neo4j leg needs Docker."""
from __future__ import annotations

import itertools
import json

import pytest
from typer.testing import CliRunner

from kgfactory.cli.main import app
from kgfactory.cli.migrate import parse_spec
from kgfactory.errors import ConfigError

runner = CliRunner()
QUESTION = "Who founded Helios Robotics?"
_db_names = (f"kgf_migrate_{i}" for i in itertools.count())


def _new_db(uri: str) -> str:
    from pymilvus import MilvusClient

    name = next(_db_names)
    c = MilvusClient(uri=uri)
    if name not in c.list_databases():
        c.create_database(name)
    c.close()
    return name


@pytest.fixture
def source_kb(tmp_path, make_services, sample_dir):
    """The sample corpus ingested into an embedded KB; closed again so the CLI opens it like a user would."""
    svc = make_services(tmp_path / "src")
    run = svc.pipeline.ingest([str(sample_dir)])
    assert run.documents_added == 6 and not run.errors
    top = svc.retriever.search(QUESTION, top_k=3).chunks[0].id
    stats = {"graph": svc.graph.stats(), "vectors": {k: svc.vectors.count(k) for k in ("chunks", "entities")}}
    svc.close()
    return tmp_path / "src", top, stats


def _migrate(*args: str):
    res = runner.invoke(app, ["migrate", *args, "--json"])
    out = json.loads(res.stdout) if res.exit_code in (0, 1) and res.stdout.strip().startswith("{") else None
    return res, out


def test_embedded_to_milvus_server_and_back(tmp_path, source_kb, milvus_server, make_services):
    src_dir, top_chunk, src_stats = source_kb
    db = _new_db(milvus_server.uri)
    server = ["--milvus-uri", milvus_server.uri, "--milvus-db", db]

    res, out = _migrate("--to", "falkordb+milvus", "-d", str(src_dir), "--target-dir", str(tmp_path / "dst"), *server)
    assert res.exit_code == 0, res.output
    assert out["ok"] and out["mismatches"] == [] and out["from"] == "falkordb+lite"
    assert out["target"] == out["source"] == src_stats
    assert src_stats["graph"]["MENTIONS"] > 0 and src_stats["vectors"]["entities"] > 0
    assert out["copied"]["IngestRun"] == 1

    # the copy answers like the original: same top passage, from the server's vectors and the copied graph
    svc = make_services(tmp_path / "dst", milvus_uri=milvus_server.uri, milvus_db=db)
    result = svc.retriever.search(QUESTION, top_k=3)
    assert result.chunks[0].id == top_chunk
    assert "Marie Dubois" in svc.answerer.answer(result).text
    labels = svc.graph.query("MATCH (e:Entity) WHERE e.name = 'Marie Dubois' RETURN labels(e) AS l")[0]["l"]
    assert "Person" in labels
    svc.close()

    # a second run into the now non-empty target is refused, unless it is a resume (which is a no-op MERGE)
    res, _ = _migrate("--to", "falkordb+milvus", "-d", str(src_dir), "--target-dir", str(tmp_path / "dst"), *server)
    assert res.exit_code == 2 and "not empty" in res.output
    res, out = _migrate("--to", "falkordb+milvus", "-d", str(src_dir), "--target-dir", str(tmp_path / "dst"), *server,
                        "--resume")
    assert res.exit_code == 0 and out["target"] == src_stats

    # and back to a fresh embedded KB
    res, out = _migrate("--from", "falkordb+milvus", "--to", "embedded", "-d", str(tmp_path / "dst"),
                        "--target-dir", str(tmp_path / "back"), *server)
    assert res.exit_code == 0, res.output
    assert out["ok"] and out["target"] == src_stats


def test_bad_specs_and_self_copies_are_refused(tmp_path):
    assert parse_spec("neo4j+milvus") == ("neo4j", "milvus") == parse_spec("servers")
    assert parse_spec("embedded") == ("falkordb", "lite")
    with pytest.raises(ConfigError, match="not a store spec"):
        parse_spec("neo4j+qdrant")
    res = runner.invoke(app, ["migrate", "--from", "embedded", "--to", "falkordb+lite", "-d", str(tmp_path / "d")])
    assert res.exit_code == 2 and "same falkordb graph" in res.output
    res = runner.invoke(app, ["migrate", "--to", "neo4j+milvus", "-d", str(tmp_path / "d")], env={"KGF_MILVUS_URI": ""})
    assert res.exit_code == 2 and "KGF_MILVUS_URI is empty" in res.output


def test_unreachable_target_names_the_setting(tmp_path):
    from _servers import free_port

    res = runner.invoke(app, ["migrate", "--to", "neo4j+milvus", "-d", str(tmp_path / "src"),
                              "--neo4j-uri", f"bolt://127.0.0.1:{free_port()}", "--milvus-uri", "http://127.0.0.1:1"],
                        env={"KGF_NEO4J_PASSWORD": "secret"})
    assert res.exit_code == 2 and "KGF_NEO4J_URI" in res.output


@pytest.mark.integration
def test_embedded_to_neo4j_and_milvus_containers(tmp_path, source_kb, neo4j_container, milvus_container):
    src_dir, _, src_stats = source_kb
    env = {"KGF_NEO4J_USER": neo4j_container.username, "KGF_NEO4J_PASSWORD": neo4j_container.password}
    res = runner.invoke(app, ["migrate", "--to", "neo4j+milvus", "-d", str(src_dir), "--json",
                              "--neo4j-uri", neo4j_container.get_connection_url(),
                              "--milvus-uri", milvus_container.get_connection_url()], env=env)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ok"] and out["target"] == src_stats
