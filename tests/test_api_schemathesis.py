"""Schemathesis over the OpenAPI schema (served by a live uvicorn on loopback): generated requests to every
operation find no 5xx.

Bounded to a few examples per operation so it stays quick; open mode so requests reach the handlers
(with keys, nearly every generated request would stop at 401)."""
from __future__ import annotations

import pytest
import schemathesis
import httpx
from hypothesis import HealthCheck, Phase, given, settings

from api_support import LiveServer, build, wait_job


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, embedder, extractor):
    from kgfactory.api import create_app

    svc = build(tmp_path_factory.mktemp("st") / "data", embedder, extractor, api_open=True, tenant="acme",
                max_file_bytes=100_000, api_rate_limit_per_minute=0)
    app = create_app(services=svc)
    server = LiveServer(app).start()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/v1/documents/texts", json={"texts": [{"title": "Helios", "text": "Helios Robotics was founded by Ada Park."}]})
        wait_job(c, r.json()["id"], "")
    yield server.url
    app.state.kgf.jobs.wait_idle(120)
    server.stop()
    svc.close()


def test_no_server_errors(live_url):
    schema = schemathesis.openapi.from_url(live_url + "/openapi.json")
    failures: list[str] = []
    ops, calls = 0, []
    for res in schema.get_all_operations():
        op = res.ok()
        ops += 1

        @given(case=op.as_strategy())
        @settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.generate], database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            resp = case.call(base_url=live_url, timeout=60)
            calls.append(resp.status_code)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}"
                                f"\n  {case.as_curl_command()}")

        run()
    assert ops >= 15 and len(calls) >= 2 * ops
    assert any(400 <= c < 500 for c in calls) and any(c < 300 for c in calls)
    assert not failures, "\n".join(failures)
