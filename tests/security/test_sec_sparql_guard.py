"""Issue 14, defects 2 and 5, on SPARQL: a real `kgf serve` process over a real RDF view (pyoxigraph).

2: SERVICE made the server fetch any URL (SSRF); it is refused (400, service_refused) unless the endpoint is
   allow-listed, and nothing is fetched. FROM / FROM NAMED with a remote IRI fetch nothing either.
5: 3 KB of `{` segfaulted pyoxigraph and killed the server; nesting and size are bounded before parsing, and a
   parse crash or a planner blow-up costs an isolated child, never the API.
"""
from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import httpx
import pytest

from api_support import wait_job
from sec_query_support import Listener, ServeProcess, call

pytestmark = pytest.mark.timeout(600)

TEXT = ("Helios Robotics was founded by Ada Park in Oslo. Ada Park works for Helios Robotics as its chief "
        "engineer. Helios Robotics builds warehouse robots.")
MAX_CHARS = 8000  # the server's KGF_SPARQL_MAX_CHARS here, so the fuzz crosses it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServeProcess(tmp_path_factory.mktemp("sec-sparql") / "data", KGF_SPARQL_CHECK_TIMEOUT_S="1.0",
                       KGF_SPARQL_MAX_CHARS=str(MAX_CHARS)).start()
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = c.post("/v1/documents/texts", json={"texts": [{"title": "Helios", "text": TEXT}]})
            assert r.status_code == 202, r.text
            assert wait_job(c, r.json()["id"], "")["state"] == "succeeded"
        yield srv
    finally:
        srv.stop()


def sparql(server, query: str, form: str = "post", timeout: float = 60) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=timeout) as c:
        if form == "get":
            return c.get("/sparql", params={"query": query})
        if form == "form":
            return c.post("/sparql", data={"query": query})
        return c.post("/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"})


# --- defect 2: SERVICE (SSRF) -----------------------------------------------------------------------
def test_service_is_refused_and_nothing_is_fetched(server):
    canary = Listener()
    u = canary.url + "/x"
    try:
        federated = [
            f"SELECT * WHERE {{ SERVICE <{u}> {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ SERVICE SILENT <{u}> {{ ?s ?p ?o }} }}",
            f"select * where {{ sErViCe <{u}> {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ VALUES ?u {{ <{u}> }} SERVICE ?u {{ ?s ?p ?o }} }}",
            f"PREFIX : <{canary.url}/> SELECT * WHERE {{ SERVICE:x {{ ?s ?p ?o }} }}",
            f"SELECT * WHERE {{ ?s ?p true.SERVICE<{u}>{{ ?s ?p ?o }} }}",
            f"ASK {{ FILTER EXISTS {{ SERVICE <{u}> {{ ?s ?p ?o }} }} }}",
            f"SELECT * WHERE {{ ?s ?p ?o # a comment\n SERVICE /* not a comment */ <{u}> {{ ?s ?p ?o }} }}",
        ]
        for q in federated:
            for form in ("post", "form", "get"):
                r = sparql(server, q, form)
                assert r.status_code == 400, (q, form, r.status_code, r.text[:300])
                err = r.json()["error"]
                assert err["type"] == "service_refused" and "SERVICE" in err["message"], err
                assert "KGF_SPARQL_SERVICE_ALLOW" in err["message"]
        # FROM / FROM NAMED name graphs of the dataset; a remote IRI there is never fetched
        for q in (f"SELECT * FROM <{u}> WHERE {{ ?s ?p ?o }} LIMIT 3",
                  f"SELECT * FROM NAMED <{u}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} LIMIT 3"):
            assert sparql(server, q).status_code == 200
        # mentions of SERVICE in comments, strings, IRIs and names are not federation
        q = (f"PREFIX schema: <https://schema.org/> SELECT ?service WHERE {{ ?service ?p ?o "
             f"FILTER(?p != schema:Service && ?o != 'SERVICE <{u}>' && ?p != <{u}/service>) }} # SERVICE <{u}>")
        r = sparql(server, q)
        assert r.status_code == 200 and r.json()["results"]["bindings"], r.text[:300]
        assert canary.hits == [], canary.hits[:1]
    finally:
        canary.close()


def test_allow_listed_endpoint_is_the_only_one_contacted():
    """In-process over an in-memory store: what KGF_SPARQL_SERVICE_ALLOW lets through is fetched, nothing else."""
    import pyoxigraph as ox

    from kgfactory.errors import SparqlRefusedError
    from kgfactory.ontology.sparql import run_query
    from kgfactory.ontology.sparql_guard import Limits

    remote = Listener(b'{"head": {"vars": ["o"]}, "results": {"bindings": '
                      b'[{"o": {"type": "literal", "value": "from afar"}}]}}')
    other = Listener()
    try:
        allow = Limits(service_allow=frozenset({remote.url + "/sparql"}))
        res = run_query(ox.Store(), f"SELECT ?o WHERE {{ SERVICE <{remote.url}/sparql> {{ ?s ?p ?o }} }}",
                        limits=allow)
        assert res.bindings() == [{"o": "from afar"}] and len(remote.hits) == 1
        for q in (f"SELECT * WHERE {{ SERVICE <{other.url}/sparql> {{ ?s ?p ?o }} }}",
                  f"SELECT * WHERE {{ SERVICE <{remote.url}/sparql> {{ SERVICE <{other.url}/x> {{ ?s ?p ?o }} }} }}",
                  f"SELECT * WHERE {{ SERVICE <{remote.url}/spar\\u0071l> {{ ?s ?p ?o }} }}",
                  f"PREFIX r: <{remote.url}/> SELECT * WHERE {{ SERVICE r:sparql {{ ?s ?p ?o }} }}"):
            with pytest.raises(SparqlRefusedError, match="SERVICE") as info:
                run_query(ox.Store(), q, limits=allow)
            assert info.value.kind == "service_refused"
        assert len(remote.hits) == 1 and other.hits == []
    finally:
        remote.close()
        other.close()


@pytest.mark.parametrize("query, refused", [
    ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }", True),
    ("SELECT * WHERE { SeRvIcE\n<http://127.0.0.1:9/> { ?s ?p ?o } }", True),
    ("SELECT * WHERE { SERVICE SILENT ?x { ?s ?p ?o } }", True),
    ("SELECT * WHERE { ?s ?p ?o.SERVICE<http://127.0.0.1:9/>{ ?s ?p ?o } }", True),
    ("SELECT * WHERE { ?s ?p 1SERVICE<http://127.0.0.1:9/>{ ?s ?p ?o } }", True),
    ("PREFIX service: <http://x/> SELECT * WHERE { ?s service:p ?o }", True),  # a prefix pyoxigraph may read as SERVICE
    ("SELECT * WHERE { ?s ?p ?o } # SERVICE <http://127.0.0.1:9/>", False),
    ("SELECT * WHERE { ?s ?p 'SERVICE <http://127.0.0.1:9/> {' }", False),
    ('SELECT * WHERE { ?s ?p """a\nSERVICE <http://127.0.0.1:9/> { }""" }', False),
    ("SELECT * WHERE { ?s <http://x/SERVICE> ?o }", False),
    ("PREFIX s: <https://schema.org/> SELECT ?service WHERE { ?service a s:Service }", False),
    ("PREFIX e: <http://x/> SELECT * WHERE { ?s e:a\\#b ?o } # SERVICE <http://127.0.0.1:9/>", False),
])
def test_scanner_table(query, refused):
    from kgfactory.errors import SparqlRefusedError
    from kgfactory.ontology.sparql_guard import Limits, check

    if refused:
        with pytest.raises(SparqlRefusedError, match="SERVICE"):
            check(query, Limits())
    else:
        check(query, Limits())


def test_nesting_is_counted_outside_strings_iris_and_comments():
    from kgfactory.errors import SparqlRefusedError
    from kgfactory.ontology.sparql_guard import Limits, check

    noise = "{" * 100
    check(f"SELECT * WHERE {{ ?s ?p '{noise}' }} # {noise}\n", Limits(max_depth=3))
    check(f"SELECT * WHERE {{ ?s ?p <urn:x:{'('*100}> }}", Limits(max_depth=3))
    with pytest.raises(SparqlRefusedError, match="KGF_SPARQL_MAX_DEPTH"):
        check("SELECT * WHERE { { { { ?s ?p ?o } } } }", Limits(max_depth=3))
    with pytest.raises(SparqlRefusedError, match="KGF_SPARQL_MAX_CHARS"):
        check("ASK {}" + " " * 100, Limits(max_chars=100))


# --- defect 5: a parser crash must not take the API down -----------------------------------------------
def test_deep_nesting_is_refused_and_the_server_lives(server):
    q = "SELECT * WHERE { ?s ?p ?o " + "{" * 3000  # the issue's 3 KB reproduction
    r, took = call(lambda: sparql(server, q), 30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "query_too_deep", r.text[:300]
    assert took < 10 and server.alive(), server.log()
    r = sparql(server, "SELECT * WHERE { ?s ?p ?o } LIMIT 5")
    assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 5


def test_planner_blowup_is_refused_within_the_check_timeout(server):
    """200 triple patterns of one subject: pyoxigraph plans them for ~25 s inside Store.query (measured on an
    empty store); the isolated check gives up after KGF_SPARQL_CHECK_TIMEOUT_S (1 s here) and kills its child."""
    q = "SELECT * WHERE { " + " ".join(f"?s <urn:p{i}> ?o{i} ." for i in range(200)) + " }"
    r, took = call(lambda: sparql(server, q), 60)
    assert r.status_code == 400 and r.json()["error"]["type"] == "query_too_complex", r.text[:300]
    assert took < 15 and server.alive()
    r, took = call(lambda: sparql(server, "ASK { ?s ?p ?o }"), 30)
    assert r.status_code == 200 and r.json()["boolean"] is True and took < 10


def test_a_parser_crash_costs_only_the_check_child():
    """With the depth bound lifted, 3,000 nested groups reach pyoxigraph: the isolated check's child segfaults,
    the query is refused, and the process evaluating queries carries on (run in a subprocess: were it not
    contained, this would crash)."""
    code = textwrap.dedent("""
        import pyoxigraph as ox
        from kgfactory.errors import SparqlRefusedError
        from kgfactory.ontology.sparql import run_query
        from kgfactory.ontology.sparql_guard import Limits
        deep = "SELECT * WHERE { ?s ?p ?o " + "{" * 3000 + "}" * 3000 + "}"
        try:
            run_query(ox.Store(), deep, limits=Limits(max_depth=10**6))
        except SparqlRefusedError as e:
            print("refused", e.kind)
        print("still here", len(run_query(ox.Store(), "SELECT * WHERE { ?s ?p ?o }")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused query_crashed_parser" in out.stdout and "still here 0" in out.stdout, out.stdout


# --- bounded fuzz: nesting, size, comments and strings ---------------------------------------------------
def _fuzz_queries(rng: random.Random, n: int) -> list[str]:
    pieces = ["{", "}", "(", ")", "[", "]", "?s", "?o", "<urn:p>", "'x{('", '"""}\n{"""', "# {{ (( \n", ".", ";",
              ",", "1", "FILTER", "OPTIONAL", "UNION", "a", "_:b", "!", "||", "<", "'''", '"']
    out = []
    for i in range(n):
        shape = i % 4
        if shape == 0:  # balanced nesting around the depth limit (64)
            d = rng.randint(1, 90)
            o, c = rng.choice([("{", "}"), ("(", ")"), ("[ <urn:p> ", " ]")])
            inner = {"{": "?s ?p ?o", "(": "1", "[": "1"}[o[0]]
            body = o * d + inner + c * d
            out.append("SELECT * WHERE { ?s ?p ?o FILTER(" + body + ") }" if o == "(" else
                       "SELECT * WHERE { ?s ?p " + body + " }" if o.startswith("[") else
                       "SELECT * WHERE { " + body + " }")
        elif shape == 1:  # unbalanced openers, deep
            out.append("SELECT * WHERE { ?s ?p ?o " + "".join(rng.choice("{([") for _ in range(rng.randint(1, 4000))))
        elif shape == 2:  # random token soup with comments and strings
            out.append("SELECT * WHERE { " + " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 400))) + " }")
        else:  # size around the limit: padded comments and strings hiding brackets
            pad = rng.randint(MAX_CHARS - 200, MAX_CHARS + 200)
            q = "SELECT * WHERE { ?s ?p ?o FILTER(?o != '" + "{" * 50 + "') } # " + "(" * 100 + "\n"
            out.append(q + "#" * max(pad - len(q), 0))
    return out


def test_fuzz_answers_rows_or_a_clean_400(server):
    rng = random.Random(1414)
    statuses: dict[int, int] = {}
    for q in _fuzz_queries(rng, 240):
        form = "get" if len(q) < 2000 and rng.random() < 0.2 else "post"
        r, took = call(lambda: sparql(server, q, form), 30)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in (200, 400), (q[:200], r.status_code, r.text[:300])
        if r.status_code == 400:
            assert r.json()["error"]["message"], r.text
        assert took < 15, (q[:200], took)
    assert statuses.get(200) and statuses.get(400), statuses
    assert server.alive(), server.log()
