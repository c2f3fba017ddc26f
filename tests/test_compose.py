"""The production stack files, checked by parsing them (no Docker engine here to run them): docker-compose.yml,
.env.example, the Dockerfile and the nginx config of the two-replica profile."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|ROOT_USER|_AUTH$")
REQUIRED_REF = re.compile(r"\$\{(\w+):\?[^}]*\}")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _env(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def test_services_and_profiles(compose):
    svcs = compose["services"]
    assert set(svcs) == {"neo4j", "etcd", "minio", "milvus", "api", "ollama", "api-2", "lb"}
    assert svcs["ollama"]["profiles"] == ["llm"]
    assert svcs["api-2"]["profiles"] == svcs["lb"]["profiles"] == ["replicas"]
    assert all("profiles" not in s for n, s in svcs.items() if n not in ("ollama", "api-2", "lb"))
    # plugins are baked into the image at build time, never downloaded at container start
    assert svcs["neo4j"]["build"]["context"] == "docker/neo4j"
    assert svcs["neo4j"]["build"]["args"]["NEO4J_IMAGE"].endswith("neo4j:5.26-community}")
    assert "NEO4J_PLUGINS" not in _env(svcs["neo4j"])
    assert svcs["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert {"ETCD_ENDPOINTS": "etcd:2379", "MINIO_ADDRESS": "minio:9000"}.items() <= _env(svcs["milvus"]).items()


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(compose):
    for name, svc in compose["services"].items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep} does not wait for healthy"
    assert set(compose["services"]["api"]["depends_on"]) == {"neo4j", "milvus"}
    assert "/readyz" in " ".join(compose["services"]["api"]["healthcheck"]["test"])


def test_named_volumes_only(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, svc in compose["services"].items():
        for v in svc.get("volumes", []):
            src = v.split(":", 1)[0] if isinstance(v, str) else v["source"]
            assert not src.startswith((".", "/", "~")), f"{name} bind-mounts {src}; use a named volume"
            used.add(src)
    assert used == declared
    for svc, path in (("neo4j", "/data"), ("milvus", "/var/lib/milvus"), ("etcd", "/etcd"), ("api", "/data")):
        assert any(v.endswith(":" + path) for v in compose["services"][svc]["volumes"]), (svc, path)


def test_only_the_api_is_exposed_and_on_loopback_by_default(compose):
    for name, svc in compose["services"].items():
        if name not in ("api", "lb"):
            assert not svc.get("ports"), f"{name} publishes ports"
        assert not svc.get("network_mode") == "host"
    (port,) = compose["services"]["api"]["ports"]
    assert port.startswith("${KGF_API_BIND:-127.0.0.1}:") and port.endswith(":8765")
    (port,) = compose["services"]["lb"]["ports"]  # the replicas' load balancer, on loopback too
    assert port.startswith("${KGF_API_BIND:-127.0.0.1}:${KGF_LB_PORT:-8780}:")


def test_no_default_passwords(compose):
    """Every secret is a required reference to .env (`${VAR:?...}`), or an optional one that defaults to empty."""
    required = set()
    for name, svc in compose["services"].items():
        for key, value in _env(svc).items():
            if not SECRET.search(key):
                continue
            refs = REQUIRED_REF.findall(value)
            optional_empty = re.fullmatch(r"\$\{\w+:-\}", value)
            assert refs or optional_empty, f"{name}.{key} = {value!r} is a literal or defaulted secret"
            literal = REQUIRED_REF.sub("", value)
            assert optional_empty or literal in ("", "neo4j/"), f"{name}.{key} carries literal text {literal!r}"
            required.update(refs)
    assert required == {"NEO4J_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    text = (REPO / "docker-compose.yml").read_text()
    assert not re.search(r"minioadmin|neo4j/neo4j|password123|changeme", text, re.I)
    # the example env file names every required secret and ships none of them
    example = dict(l.split("=", 1) for l in (REPO / ".env.example").read_text().splitlines()
                   if l.strip() and not l.startswith("#"))
    for var in required:
        assert example[var] == "", f".env.example ships a value for {var}"
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_api_service_is_wired_to_the_servers(compose):
    env = _env(compose["services"]["api"])
    assert env["KGF_GRAPH_BACKEND"] == "neo4j" and env["KGF_NEO4J_URI"] == "bolt://neo4j:7687"
    assert env["KGF_MILVUS_URI"] == "http://milvus:19530"
    from kgfactory.settings import Settings

    s = Settings(**{k[4:].lower(): v for k, v in env.items() if "${" not in v})
    assert s.graph_backend == "neo4j" and s.milvus_uri == "http://milvus:19530"


def test_dockerfile_is_multistage_non_root_offline_and_runs_kgf_serve():
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert len(stages) >= 2
    runtime = text.split(f"AS {stages[-1]}", 1)[1]
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and user[-1] not in ("root", "0")
    assert "COPY --from=" in runtime and "HF_HUB_OFFLINE=1" in runtime
    assert 'ENTRYPOINT ["kgf"]' in runtime and 'CMD ["serve"]' in runtime
    assert 'pip install ".[server,nlp]"' in text  # server parts + the spaCy pipeline (the base is the client only)
    assert "HEALTHCHECK" in runtime
    ignore = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".env", ".git"} <= set(ignore)


def test_dockerfile_pins_torch_like_the_readme_and_ships_libgomp():
    text = (REPO / "Dockerfile").read_text()
    readme_pin = re.search(r"pip install (?:-q )?torch==([\d.]+)", (REPO / "README.md").read_text()).group(1)
    ci_pin = re.search(r"torch==([\d.]+)", (REPO / ".ci" / "run").read_text()).group(1)
    assert ci_pin == readme_pin
    assert re.search(r"^ARG TORCH_VERSION=" + re.escape(readme_pin) + "$", text, re.M)
    assert re.search(r"pip install [^\n]*torch==\$\{TORCH_VERSION\}", text)
    assert not re.search(r"pip install [^\n]*\btorch\s*$", text, re.M), "an unpinned torch pulls whatever is newest"
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"apt-get install[^\n]*\blibgomp1\b", runtime), "falkordb.so needs libgomp1 at run time"


def test_neo4j_image_bakes_apoc_and_n10s_at_build_time():
    text = (REPO / "docker" / "neo4j" / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{NEO4J_IMAGE\}", text, re.M)
    assert re.search(r"^ARG NEO4J_IMAGE=neo4j:5\.26-community$", text, re.M)
    assert re.search(r"cp /var/lib/neo4j/labs/apoc-\*-core\.jar /plugins/", text)
    assert re.search(r"^ADD https://github\.com/neo4j-labs/neosemantics/releases/download/\$\{N10S_VERSION\}/"
                     r"neosemantics-\$\{N10S_VERSION\}\.jar /plugins/$", text, re.M)
    n10s = re.search(r"^ARG N10S_VERSION=(\d+\.\d+)", text, re.M).group(1)
    neo = re.search(r"^ARG NEO4J_IMAGE=neo4j:(\d+\.\d+)", text, re.M).group(1)
    assert n10s == neo, "n10s is released per Neo4j minor version"
    assert not re.search(r"NEO4J_PLUGINS\s*=", text), "plugins are not downloaded at start"
    assert "NEO4J_server_directories_plugins=/plugins" in text
    assert re.search(r"procedures_unrestricted=apoc\.\*,n10s\.\*", text)


# --- issue 19: two API replicas behind nginx (`--profile replicas`) -----------------------------------------------
NGINX_CONF = REPO / "docker" / "nginx" / "replicas.conf"


def _nginx_blocks(text: str) -> list:
    """nginx config as nested [directive, args, children|None] (comments and quoting understood); raises on a
    directive without its ';', an unbalanced brace or an unterminated string: the structure nginx -t checks first."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*|[{};]|[^\s{};"\'#]+|["\']', text)
    stack: list[list] = [[]]
    words: list[str] = []
    for tok in tokens:
        if tok.startswith("#"):
            continue
        assert tok not in ('"', "'"), "unterminated string"
        if tok == ";":
            assert words, "empty directive"
            stack[-1].append([words[0], words[1:], None])
            words = []
        elif tok == "{":
            assert words, "block without a name"
            block: list = [words[0], words[1:], []]
            stack[-1].append(block)
            stack.append(block[2])
            words = []
        elif tok == "}":
            assert not words, f"directive {words} lacks its ';'"
            assert len(stack) > 1, "unbalanced '}'"
            stack.pop()
        else:
            words.append(tok.strip("\"'"))
    assert not words and len(stack) == 1, "unterminated directive or block"
    return stack[0]


def _find(blocks: list, name: str) -> list:
    return [b for b in blocks if b[0] == name]


def test_nginx_config_is_valid_in_structure_and_balances_both_replicas(compose):
    lb = compose["services"]["lb"]
    (cfg,) = lb["configs"]
    assert compose["configs"][cfg["source"]]["file"] == "./docker/nginx/replicas.conf"
    assert cfg["target"] == "/etc/nginx/conf.d/default.conf"  # an http-context include: upstream and server blocks
    blocks = _nginx_blocks(NGINX_CONF.read_text())
    assert {b[0] for b in blocks} == {"upstream", "server"}
    (up,) = _find(blocks, "upstream")
    servers = [d[1][0] for d in _find(up[2], "server")]
    replicas = sorted(n for n, s in compose["services"].items() if s.get("build") == "." and n != "lb")
    assert sorted(s.rsplit(":", 1)[0] for s in servers) == replicas == ["api", "api-2"]
    assert all(s.endswith(":8765") for s in servers)  # the port `kgf serve` listens on in the image
    # one API key stays on one replica: its ingest job's status lives there
    assert _find(up[2], "hash")[0][1] == ["$http_authorization", "consistent"]
    (srv,) = _find(blocks, "server")
    (listen,) = _find(srv[2], "listen")
    assert lb["ports"][0].endswith(":" + listen[1][0])
    locations = {tuple(b[1]): b[2] for b in _find(srv[2], "location")}
    assert locations[("/",)] and [d[1] for d in _find(locations[("/",)], "proxy_pass")] == [[f"http://{up[1][0]}"]]
    assert _find(locations[("/",)], "proxy_buffering")[0][1] == ["off"]  # streamed answers pass as written
    assert "http://127.0.0.1:8080/lb-health" in lb["healthcheck"]["test"] and ("=", "/lb-health") in locations
    with pytest.raises(AssertionError):
        _nginx_blocks("upstream x { server a:1 }")  # the parser does catch a missing ';'


def test_replicas_share_the_stores_and_the_key_store_but_not_their_data(compose):
    svcs = compose["services"]
    a, b = _env(svcs["api"]), _env(svcs["api-2"])
    stores = ("KGF_GRAPH_BACKEND", "KGF_NEO4J_URI", "KGF_NEO4J_USER", "KGF_NEO4J_PASSWORD", "KGF_NEO4J_DATABASE",
              "KGF_MILVUS_URI")
    assert all(a[k] == b[k] for k in stores) and {k: v for k, v in b.items() if k not in a} == \
        {"KGF_KEY_STORE_PATH": "/shared/api/keys.sqlite"}
    assert svcs["api-2"]["ports"] == [] and svcs["api-2"]["image"] == svcs["api"]["image"]
    vols_b = dict(reversed(v.split(":", 1)) for v in svcs["api-2"]["volumes"])
    assert vols_b["/data"] != "kgf-data" and vols_b["/shared"] == "kgf-data"  # api's /data: its key store
    assert "/data" in dict(reversed(v.split(":", 1)) for v in svcs["api"]["volumes"])
    from kgfactory.api.keys import keystore_path
    from kgfactory.settings import Settings

    s = Settings(**{k[4:].lower(): v for k, v in b.items() if "${" not in v})
    assert keystore_path(s.data_dir, s.key_store_path).as_posix() == "/shared/api/keys.sqlite"
    assert keystore_path(Path("/data")).as_posix() == "/data/api/keys.sqlite"  # where api keeps it
    # every replica is checked on /readyz and the balancer waits for both
    for name in ("api", "api-2"):
        assert "/readyz" in " ".join(svcs[name]["healthcheck"]["test"])
    assert svcs["lb"]["depends_on"] == {"api": {"condition": "service_healthy"},
                                        "api-2": {"condition": "service_healthy"}}
