"""GET /api/v1/ingest/stats reports what the ingest workers record (ingest.stats.read_stats)."""

from __future__ import annotations

import pytest

from service_api.auth import create_token


def test_ingest_stats_totals(client, db, uid):
    viewer = {"Authorization": f"Bearer {create_token(db, f'ingest-{uid}', 'viewer')}"}
    before = client.get("/api/v1/ingest/stats", headers=viewer)
    assert before.status_code == 200 and before.json()["available"]
    received = before.json()["stats"]["totals"]["received"]
    db.execute("""INSERT INTO ingest_stats (worker, received, stored, duplicates, dead_lettered, lag_s)
                  VALUES (%s, 120, 100, 5, 15, 0.25)""", (f"api-test-{uid}",))
    body = client.get("/api/v1/ingest/stats", headers=viewer).json()
    assert body["source"] == "ingest.stats"
    assert body["stats"]["totals"]["received"] == received + 120
    assert any(w["worker"] == f"api-test-{uid}" and w["stored"] == 100
               for w in body["stats"]["workers"])
    assert client.get("/api/v1/ingest/stats").status_code == 401
