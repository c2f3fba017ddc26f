"""Issue 14, defects 3 and 6, on analyst Cypher (`/v1/cypher` over a real KB and embedded FalkorDB; the SDK's
in-process KnowledgeBase.cypher takes the same check).

3: `LOAD /* c */ CSV FROM 'https://127.0.0.1:PORT/x'` passed the regex write filter and FalkorDB's read-only
   mode ran it (SSRF; `file:///etc/passwd` reached the engine). The filter now works on tokens and LOAD CSV is
   refused outright.
6: `RETURN [[[...]]]` 5,000 deep ran for minutes inside FalkorDB's parser, past the query timeout (the parser
   is exponential in nesting). Nesting (brackets, CASE, NOT, unary minus) and a nesting-weighted size are bounded.
"""
from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

from api_support import build, h, make_keys, wait_job
from sec_query_support import Listener, call

pytestmark = pytest.mark.timeout(600)

TEXT_A = ("Helios Robotics was founded by Ada Park in Oslo. Ada Park works for Helios Robotics as its chief "
          "engineer. Helios Robotics builds warehouse robots.")
TEXT_B = "Globex Corporation is headquartered in Springfield. Hank Scorpio founded Globex Corporation."


@pytest.fixture(scope="module")
def api(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app

    svc = build(tmp_path_factory.mktemp("sec-cypher") / "data", embedder, extractor, cypher_timeout_ms=2000)
    keys = make_keys(svc.settings.data_dir)
    with TestClient(create_app(services=svc)) as client:
        for key, title, text in (("a_admin", "Helios", TEXT_A), ("b_admin", "Globex", TEXT_B)):
            r = client.post("/v1/documents/texts", json={"texts": [{"title": title, "text": text}]},
                            headers=h(keys[key]))
            assert r.status_code == 202, r.text
            assert wait_job(client, r.json()["id"], keys[key])["state"] == "succeeded"
        yield {"client": client, "keys": keys, "svc": svc}
    svc.close()


def cypher(api, query: str, key: str = "a_analyst", **kw):
    return api["client"].post("/v1/cypher", json={"query": query, **kw}, headers=h(api["keys"][key]))


# --- defect 3: LOAD CSV ----------------------------------------------------------------------------------
def test_load_csv_is_refused_and_nothing_is_fetched(api):
    canary = Listener(b"a,b\n1,2\n", "text/csv")
    try:
        before = api["svc"].graph.stats()
        for q in (f"LOAD /* c */ CSV FROM 'https://127.0.0.1:{canary.port}/x' AS row RETURN row",
                  f"LOAD /* c */ CSV FROM '{canary.url}/x' AS row RETURN row",
                  f"load\ncsv with headers from '{canary.url}/x' AS row RETURN row",
                  f"LOAD // line comment\n CSV FROM '{canary.url}/x' AS row RETURN row",
                  "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
                  "MATCH (n) WITH count(n) AS c LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row, c"):
            r = cypher(api, q)
            assert r.status_code == 400, (q, r.status_code, r.text[:300])
            err = r.json()["error"]
            assert err["type"] == "load_csv_refused" and "LOAD CSV is not allowed" in err["message"], (q, err)
            assert "passwd" not in err["message"]
        assert canary.hits == [], canary.hits[:1]
        assert api["svc"].graph.stats() == before
        audit = api["client"].get("/v1/audit?action=cypher", headers=h(api["keys"]["a_admin"])).json()
        assert any(e["outcome"] == "refused" and "LOAD" in (e.get("target") or "") for e in audit), audit[:3]
    finally:
        canary.close()


def test_sdk_knowledge_base_takes_the_same_check(api):
    from kgfactory.sdk.errors import ValidationError
    from kgfactory.sdk.local import KnowledgeBase

    kb = KnowledgeBase(api["svc"], tenant="acme", own=False)
    with pytest.raises(ValidationError, match="LOAD CSV") as info:
        kb.cypher("LOAD /* c */ CSV FROM 'file:///etc/passwd' AS row RETURN row")
    assert info.value.status == 400 and info.value.type == "load_csv_refused"
    with pytest.raises(ValidationError, match="nests more than") as info:
        kb.cypher("RETURN " + "[" * 5000 + "1" + "]" * 5000)
    assert kb.cypher("MATCH (d:Document) RETURN d.title AS t").rows == [["Helios"]]


# --- defect 6: nesting ---------------------------------------------------------------------------------
@pytest.mark.parametrize("query", [
    "RETURN " + "[" * 5000 + "1" + "]" * 5000,  # the reproduction
    "RETURN " + "(" * 40 + "1" + ")" * 40,
    "RETURN " + "{a: " * 40 + "1" + "}" * 40,
    "RETURN " + "NOT " * 200 + "true",  # no brackets at all: 200 NOTs ran > 10 s in FalkorDB's parser
    "RETURN " + "- " * 2000 + "1",
    "RETURN " + "CASE WHEN true THEN " * 40 + "1" + " END" * 40,
])
def test_deep_nesting_is_refused_quickly(api, query):
    r, took = call(lambda: cypher(api, query), 20)
    assert r.status_code == 400 and r.json()["error"]["type"] == "query_too_deep", r.text[:300]
    assert "KGF_CYPHER_MAX_DEPTH" in r.json()["error"]["message"]
    assert took < 2, took
    r, took = call(lambda: cypher(api, "MATCH (d:Document) RETURN count(d) AS n"), 20)
    assert r.status_code == 200 and r.json()["rows"] == [[1]] and took < 5  # the engine is not busy


def test_wide_nesting_under_the_depth_limit_is_refused_by_cost(api):
    """Each token costs the parser about 2**level: 50 lists 12 deep side by side stay under the depth limit
    but not under the cost limit (together they would parse for seconds)."""
    item = "[" * 12 + "1" + "]" * 12
    r, took = call(lambda: cypher(api, "RETURN " + ", ".join(f"{item} AS c{i}" for i in range(50))), 20)
    assert r.status_code == 400 and r.json()["error"]["type"] == "query_too_complex", r.text[:300]
    r, took = call(lambda: cypher(api, f"RETURN {item} AS c"), 20)
    assert r.status_code == 200 and took < 5


# --- the tokenizer -------------------------------------------------------------------------------------
REFUSED = [
    ("CREATE (n)", "write_refused"),
    ("match (n) detach delete n", "write_refused"),
    ("MATCH (n) /* hidden? */ SET n.a = 1", "write_refused"),
    ("MATCH (n) // comment\nSET n.a = 1", "write_refused"),
    ("RETURN 1 AS x //\rCREATE (n)", "write_refused"),  # a comment ends at any line break
    ("MATCH (n)\tREMOVE\nn.tenant", "write_refused"),
    ("MERGE (x:X) RETURN x", "write_refused"),
    ("DROP INDEX ON :X(a)", "write_refused"),
    ("FOREACH (x IN [1] | CREATE (:X))", "write_refused"),
    ("MATCH (n) WITH n. SET n.a = 1", "write_refused"),  # a dot that does not touch the word is not a property
    ("WITH 1. SET n.a = 1", "write_refused"),
    ("RETURN '\\' CREATE (n) //'", None),  # a backslash-escaped quote inside one string: nothing to refuse
    ("CALL { MATCH (n) RETURN n } IN TRANSACTIONS RETURN 1", "write_refused"),
    ("CALL db.idx.fulltext.createNodeIndex('X', 'a')", "write_refused"),
    ("CALL db.idx.fulltext.drop('X')", "write_refused"),
    ("CALL apoc.create.node(['X'], {})", "write_refused"),
    ("CALL `db`.`idx`.`fulltext`.`drop`('X')", "write_refused"),
    ("LOAD CSV FROM 'x' AS r RETURN r", "load_csv_refused"),
    ("LoAd /**/ cSv FROM 'x' AS r RETURN r", "load_csv_refused"),
    ("USING PERIODIC COMMIT LOAD CSV FROM 'x' AS r RETURN r", "load_csv_refused"),
    ("RETURN 'unterminated", "bad_query"),
    ("RETURN 1 /* unterminated", "bad_query"),
    ("RETURN `unterminated", "bad_query"),
]
ALLOWED = [
    "MATCH (n) RETURN n.created",
    "MATCH (n) WHERE n.set = 1 AND n.delete IS NULL RETURN n.merge",
    "RETURN 'CREATE (n) SET x = 1 LOAD CSV' AS s",
    'RETURN "MATCH (n) DETACH DELETE n" AS s',
    "MATCH (n) RETURN n // CREATE (m)",
    "MATCH (n) /* SET n.a = 1 */ RETURN n",
    "MATCH (n:Create)-[:DELETE]->(m) RETURN {set: 1, remove: 2}",
    "MATCH (n) RETURN n.`CREATE` AS `SET`",
    "CALL db.labels()",
    "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
    "CALL db.idx.fulltext.queryNodes('Entity', 'Helios') YIELD node RETURN node.name",
    "CALL { MATCH (n) RETURN count(n) AS c } RETURN c",
    "MATCH (a)-[r]->(b) WHERE NOT a.x = 1 AND NOT b.y = 2 AND NOT a.z = 3 AND NOT b.w = 4 RETURN -a.x + -b.y * -1",
    "RETURN [x IN range(1, 10) WHERE x % 2 = 0 | x * 2] AS evens, {a: [1, [2, [3]]]} AS m",
]


@pytest.mark.parametrize("query, kind", REFUSED)
def test_tokenizer_refuses(query, kind):
    from kgfactory.errors import CypherRefusedError
    from kgfactory.graph import cypher as Q, cypher_guard

    if kind is None:
        cypher_guard.check(query)
        assert not Q.is_write(query)
        return
    with pytest.raises(CypherRefusedError) as info:
        cypher_guard.check(query)
    assert info.value.kind == kind
    assert Q.is_write(query)  # the store's read-only path (GraphStore.query, tenant views) refuses it too


@pytest.mark.parametrize("query", ALLOWED)
def test_tokenizer_allows_reads(query):
    from kgfactory.graph import cypher as Q, cypher_guard

    cypher_guard.check(query)
    assert not Q.is_write(query)


def test_allowed_reads_run(api):
    for q in ALLOWED:
        r = cypher(api, q)
        assert r.status_code in (200, 400), (q, r.text[:300])
        if r.status_code == 400:  # the engine may dislike a query; the guard must not be what refused it
            assert r.json()["error"]["type"] == "bad_query", (q, r.text[:300])
    assert cypher(api, "CALL db.labels()").status_code == 200


# --- bounded fuzz --------------------------------------------------------------------------------------
def _fuzz_queries(rng: random.Random, n: int) -> list[str]:
    pieces = ["(", ")", "[", "]", "{", "}", "1", "'s'", '"t"', "`b`", "NOT", "-", "+", "AND", ",", "x", "n.a",
              "CASE", "WHEN", "THEN", "END", "/* ( [ */", "// {{\n", "'[[[['", "$p", "true", "IN", "|", ":"]
    out = []
    for i in range(n):
        shape = i % 4
        if shape == 0:  # balanced nesting of one kind around the depth limit (12)
            d = rng.randint(1, 30)
            o, c = rng.choice([("[", "]"), ("(", ")"), ("{a: ", "}"), ("NOT (", ")"), ("CASE WHEN true THEN ", " END")])
            inner = "true" if o.startswith("NOT") else "1"
            out.append("RETURN " + o * d + inner + c * d + " AS v")
        elif shape == 1:  # unbalanced openers
            out.append("RETURN " + "".join(rng.choice("([{") for _ in range(rng.randint(1, 3000))))
        elif shape == 2:  # token soup with comments and strings
            out.append("RETURN " + " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 300))))
        else:  # many siblings at a random depth: the cost bound
            d = rng.randint(1, 12)
            k = rng.randint(1, 200)
            out.append("RETURN [" + ", ".join("[" * d + "1" + "]" * d for _ in range(k)) + "] AS v")
    return out


def test_fuzz_answers_rows_or_a_clean_400(api):
    rng = random.Random(614)
    before = api["svc"].graph.stats()
    statuses: dict[int, int] = {}
    for q in _fuzz_queries(rng, 240):
        r, took = call(lambda: cypher(api, q, params={"p": 1}), 20)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in (200, 400), (q[:200], r.status_code, r.text[:300])
        if r.status_code == 400:
            assert r.json()["error"]["message"], r.text
        assert took < 5, (q[:200], took)
    assert statuses.get(200) and statuses.get(400), statuses
    assert api["svc"].graph.stats() == before
