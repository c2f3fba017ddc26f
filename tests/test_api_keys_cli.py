"""`kgf keys` and `kgf audit`, keys hashed at rest, the rate limiter (no models needed)."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from kgfactory.cli.main import app


def test_keys_create_list_revoke_hashed_at_rest(tmp_path):
    from kgfactory.api.keys import KeyStore, keystore_path

    run = CliRunner()
    r = run.invoke(app, ["keys", "create", "--name", "alice", "--tenant", "acme", "-r", "analyst", "-r", "reader",
                         "-d", str(tmp_path)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("kgf_")
    assert key.encode() not in keystore_path(tmp_path).read_bytes()  # only the hash is stored
    ks = KeyStore(keystore_path(tmp_path))
    p = ks.verify(key)
    assert p.tenant == "acme" and p.roles == {"analyst", "reader"} and p.can("analyse") and not p.can("ingest")
    assert ks.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    rows = json.loads(run.invoke(app, ["keys", "list", "--json", "-d", str(tmp_path)]).stdout)
    assert [(k["name"], k["tenant"], k["revoked_at"]) for k in rows] == [("alice", "acme", None)]
    assert run.invoke(app, ["keys", "revoke", rows[0]["id"], "-d", str(tmp_path)]).exit_code == 0
    assert ks.verify(key) is None  # a running server's store sees the revocation at once
    assert run.invoke(app, ["keys", "revoke", rows[0]["id"], "-d", str(tmp_path)]).exit_code == 1
    r = run.invoke(app, ["keys", "create", "--name", "x", "--tenant", "bad tenant!", "-d", str(tmp_path)])
    assert r.exit_code == 2 and "tenant" in r.output
    r = run.invoke(app, ["keys", "create", "--name", "x", "-r", "god", "-d", str(tmp_path)])
    assert r.exit_code == 2 and "roles" in r.output
    ks.close()


def test_audit_cli_reads_entries(tmp_path):
    from kgfactory.api.audit import AuditLog, audit_path

    log = AuditLog(audit_path(tmp_path))
    log.record(action="query", outcome="ok", tenant="acme", who="alice", target="Who?")
    log.record(action="delete", outcome="ok", tenant="globex", who="bob", target="doc_1")
    log.close()
    r = CliRunner().invoke(app, ["audit", "--json", "--tenant", "acme", "-d", str(tmp_path)])
    rows = json.loads(r.stdout)
    assert [(e["action"], e["who"]) for e in rows] == [("query", "alice")]


def test_rate_limiter_refills():
    import time

    from kgfactory.api.state import RateLimiter

    lim = RateLimiter(per_minute=120)  # 2 per second, bucket of 120
    assert all(lim.allow("k") == 0.0 for _ in range(120))
    wait = lim.allow("k")
    assert 0 < wait <= 0.5 and lim.allow("other") == 0.0
    time.sleep(wait + 0.05)
    assert lim.allow("k") == 0.0
    assert RateLimiter(0).allow("k") == 0.0
