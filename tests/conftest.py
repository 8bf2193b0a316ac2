"""Shared fixtures: every test session runs in its own World (fresh database with all
migrations on the running TimescaleDB, private Mosquitto). Start the services with
``make services`` (``make test`` does)."""

from __future__ import annotations

import secrets

import psycopg
import pytest

from prognos.world import World


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
