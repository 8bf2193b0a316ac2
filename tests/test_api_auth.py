"""Service API authentication and roles against the real database: bearer tokens stored
hashed, 401 without/with a bad, revoked or expired token, 403 for a role without the right,
token administration over HTTP and the CLI."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from prognos import config
from service_api import cli
from service_api.auth import authenticate, create_token, hash_token
from tests import seed


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_health_needs_no_token(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["db"] == "ok"


def test_token_is_stored_hashed_and_authenticates(db, uid):
    token = create_token(db, f"t-{uid}", "planner")
    row = db.execute("SELECT token_hash, role FROM api_tokens WHERE name = %s", (f"t-{uid}",)).fetchone()
    assert row == (hash_token(token), "planner") and token not in row[0]
    user = authenticate(db, token)
    assert user.role == "planner" and user.name == f"t-{uid}"
    assert authenticate(db, token + "x") is None


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer prg_not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="},
    {"Authorization": "Bearer"},
])
def test_401_without_valid_token(client, headers):
    r = client.get("/api/v1/service-orders", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_are_refused(client, db, uid):
    revoked = create_token(db, f"rev-{uid}", "viewer")
    assert client.get("/api/v1/me", headers=bearer(revoked)).status_code == 200
    db.execute("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s", (hash_token(revoked),))
    assert client.get("/api/v1/me", headers=bearer(revoked)).status_code == 401
    expired = create_token(db, f"exp-{uid}", "viewer", expires_in=timedelta(days=1))
    db.execute("UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE token_hash = %s",
               (hash_token(expired),))
    assert client.get("/api/v1/me", headers=bearer(expired)).status_code == 401


def test_create_token_refuses_bad_role_and_name(db):
    with pytest.raises(ValueError, match="role"):
        create_token(db, "x", "root")
    with pytest.raises(ValueError, match="name"):
        create_token(db, "bad\x00name", "viewer")


@pytest.mark.parametrize("role,rights", [
    ("viewer", ["fleet", "read"]),
    ("technician", ["complete", "fleet", "hold", "read", "start"]),
])
def test_me_lists_rights(client, db, uid, role, rights):
    r = client.get("/api/v1/me", headers=bearer(create_token(db, f"me-{uid}", role)))
    assert r.json()["role"] == role and r.json()["rights"] == rights


def test_only_admin_manages_tokens_over_http(client, db, uid):
    for role in ("viewer", "planner", "technician"):
        tok = create_token(db, f"{role}-{uid}", role)
        assert client.get("/api/v1/tokens", headers=bearer(tok)).status_code == 403
        r = client.post("/api/v1/tokens", headers=bearer(tok), json={"name": "x", "role": "admin"})
        assert r.status_code == 403
    admin = bearer(create_token(db, f"admin-{uid}", "admin"))
    r = client.post("/api/v1/tokens", headers=admin, json={"name": f"new-{uid}", "role": "technician",
                                                             "expires_in_days": 30})
    assert r.status_code == 201
    created = r.json()
    assert client.get("/api/v1/me", headers=bearer(created["token"])).json()["role"] == "technician"
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert any(t["token_id"] == created["token_id"] and t["active"] for t in listed)
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert client.delete(f"/api/v1/tokens/{created['token_id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/tokens/{created['token_id']}", headers=admin).status_code == 404
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 401
    bad = client.post("/api/v1/tokens", headers=admin, json={"name": "x", "role": "superuser"})
    assert bad.status_code == 422


def test_cli_tokens_create_list_revoke(world, monkeypatch, capsys, uid):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    config.get_settings.cache_clear()
    try:
        assert cli.main(["tokens", "create", "--name", f"cli-{uid}", "--role", "planner"]) == 0
        token = capsys.readouterr().out.strip()
        assert token.startswith("prg_")
        assert cli.main(["tokens", "list"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.endswith(f"cli-{uid}"))
        token_id = int(line.split()[0])
        assert cli.main(["tokens", "revoke", str(token_id)]) == 0
        assert cli.main(["tokens", "revoke", str(token_id)]) == 1
        with pytest.raises(SystemExit):
            cli.main(["tokens", "create", "--name", "x", "--role", "root"])
        assert cli.main(["tokens", "create", "--name", "x", "--role", "viewer",
                         "--expires-days", "-1"]) == 2
        # a customer token, bound to its customer; one that never expires
        with psycopg.connect(world.settings.dsn, autocommit=True) as conn:
            seed.add_customer(conn, f"CC-{uid}", [])
        assert cli.main(["tokens", "create", "--name", f"portal-{uid}", "--role", "customer",
                         "--customer", f"CC-{uid}", "--never-expires"]) == 0
        capsys.readouterr()
        assert cli.main(["tokens", "list"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if f"portal-{uid}" in ln)
        assert line.endswith(f"portal-{uid} (customer CC-{uid})") and " - " in line
        assert cli.main(["tokens", "create", "--name", "x", "--role", "customer"]) == 2
    finally:
        config.get_settings.cache_clear()
