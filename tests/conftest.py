"""Shared fixtures: every test session runs in its own World (fresh database with all
migrations on the running TimescaleDB, private Mosquitto). Start the services with
``make services`` (``make test`` does)."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings as hypothesis_settings

from ops.world import World
from service_api.app import create_app
from service_api.auth import create_token

# Tests assert behaviour, not speed (benchmarks do that): on a shared 2-core machine a case can
# take longer than hypothesis's 200 ms default, which would fail a correct test as "flaky".
hypothesis_settings.register_profile("prognos", deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("prognos")


@pytest.fixture(scope="session")
def world():
    with World() as w:
        yield w


@pytest.fixture(scope="session")
def settings(world):
    return world.settings


@pytest.fixture
def db(settings):
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def uid() -> str:
    return secrets.token_hex(4)


@pytest.fixture(scope="module")
def client(settings):
    """The service API in-process, against the session's database (tests send many bad
    tokens on purpose: the failed-authentication throttle is tested on its own app; the webhook
    dispatcher too)."""
    app_settings = settings.model_copy(update={"auth_fail_limit": 1_000_000,
                                               "webhook_dispatch": False})
    with TestClient(create_app(app_settings)) as c:
        yield c


@pytest.fixture(scope="module")
def viewer(settings):
    """Authorization header of a viewer token."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, 'viewer', 'viewer')}"}
