"""The production stack files, checked by parsing them (no Docker engine here to run them): docker-compose.yml,
.env.example and the Dockerfile."""
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
    assert set(svcs) == {"neo4j", "etcd", "minio", "milvus", "api", "ollama"}
    assert svcs["ollama"]["profiles"] == ["llm"]
    assert all("profiles" not in s for n, s in svcs.items() if n != "ollama")
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
        if name != "api":
            assert "ports" not in svc, f"{name} publishes ports"
        assert not svc.get("network_mode") == "host"
    (port,) = compose["services"]["api"]["ports"]
    assert port.startswith("${KGF_API_BIND:-127.0.0.1}:") and port.endswith(":8765")


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
