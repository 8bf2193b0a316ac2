"""The installed base over HTTP: the asset list with contract tier, warranty, health and open
orders, its filters and sorts; one asset in depth; its telemetry raw, bucketed from the raw
hypertable and from the ingest rollups with the not-yet-rolled-up tail."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests import seed

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def fleet(db, uid):
    m, c = f"AM-{uid}", f"AC-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c, [f"{c}-S0", f"{c}-S1"])
    a = [f"AA{i}-{uid}" for i in range(3)]
    seed.add_asset(db, a[0], m, c, f"{c}-S0", tier="gold", device_id=f"d0-{uid}",
                   warranty_end=date.today() + timedelta(days=100))
    seed.add_asset(db, a[1], m, c, f"{c}-S1", tier="platinum", device_id=f"d1-{uid}",
                   warranty_end=date.today() - timedelta(days=1))
    seed.add_asset(db, a[2], m, c, f"{c}-S1", tier=None, lifecycle_stage="commissioning")
    seed.add_health(db, a[0], "bearing_wear", health=0.4, risk=0.7, rul_h=100)
    seed.add_health(db, a[0], "seal_leak", health=0.9, risk=0.1, rul_h=900)
    seed.add_health(db, a[1], "bearing_wear", health=0.95, risk=0.02, rul_h=2000)
    seed.add_order(db, a[0], "bearing_wear", opened_at=NOW - timedelta(hours=2), risk=0.7)
    seed.add_order(db, a[0], "seal_leak", opened_at=NOW - timedelta(days=9), status="completed",
                   closed_at=NOW - timedelta(days=8))
    return {"model": m, "customer": c, "assets": a}


def test_asset_list_fields_filters_and_sorts(client, viewer, fleet):
    a0, a1, a2 = fleet["assets"]
    r = client.get("/api/v1/assets", params={"model": fleet["model"]}, headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 3
    assert [x["asset_id"] for x in body["items"]] == [a0, a1, a2]       # riskiest first
    x0 = body["items"][0]
    assert x0["risk"] == pytest.approx(0.7) and x0["health"] == pytest.approx(0.4)
    assert x0["worst_mode"] == "bearing_wear" and x0["rul_h"] == pytest.approx(100)
    assert x0["open_orders"] == 1 and x0["contract_tier"] == "gold" and x0["in_warranty"]
    assert x0["site_id"] == f"{fleet['customer']}-S0" and x0["model_name"].endswith(fleet["model"])
    x1, x2 = body["items"][1], body["items"][2]
    assert not x1["in_warranty"] and x1["contract_tier"] == "platinum" and x1["open_orders"] == 0
    assert x2["risk"] is None and x2["contract_tier"] is None and x2["lifecycle_stage"] == "commissioning"

    def ids(**params):
        got = client.get("/api/v1/assets", params={"model": fleet["model"], **params},
                         headers=viewer).json()
        return [x["asset_id"] for x in got["items"]]

    assert ids(tier="platinum") == [a1]
    assert ids(site=f"{fleet['customer']}-S1") == [a1, a2]
    assert ids(min_risk=0.5) == [a0]
    assert ids(in_warranty="true") == [a0]
    assert ids(with_open_orders="true") == [a0]
    assert ids(lifecycle="commissioning") == [a2]
    assert ids(sort="rul") == [a0, a1, a2]
    assert ids(sort="asset_id") == sorted([a0, a1, a2])
    assert ids(limit=1, offset=1) == [a1]
    past = client.get("/api/v1/assets", params={"model": fleet["model"], "offset": 10},
                      headers=viewer).json()
    assert past["items"] == [] and past["count"] == 3
    for bad in ({"min_risk": 2}, {"sort": "name"}, {"lifecycle": "retired"}, {"limit": 0}):
        assert client.get("/api/v1/assets", params=bad, headers=viewer).status_code == 422


def test_asset_detail(client, viewer, db, fleet):
    a0 = fleet["assets"][0]
    db.execute("""INSERT INTO anomalies (time, asset_id, sensor, detector, score)
                  VALUES (%s, %s, 'vibration_rms', 'ewm_z', 7.5)""", (NOW - timedelta(hours=3), a0))
    seed.add_downtime(db, a0, NOW - timedelta(days=20), NOW - timedelta(days=20) + timedelta(hours=3))
    seed.add_repair(db, a0, "seal_leak", NOW - timedelta(days=8, hours=2), NOW - timedelta(days=8))
    r = client.get(f"/api/v1/assets/{a0}", headers=viewer)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["device_id"] == f"d0-{a0.split('-', 1)[1]}" and d["device_status"] == "active"
    assert [s["name"] for s in d["sensors"]] == [s[0] for s in seed.SENSORS]
    modes = {m["mode"]: m for m in d["modes"]}
    assert set(modes) == {m[0] for m in seed.MODES}
    assert d["modes"][0]["mode"] == "bearing_wear" and modes["bearing_wear"]["rul_h"] == 100
    assert modes["electrical"]["risk"] is None and modes["electrical"]["nominal_mttr_h"] == 3.0
    assert d["anomalies"][0]["detector"] == "ewm_z" and d["anomalies"][0]["score"] == 7.5
    assert d["downtime"][0]["duration_h"] == pytest.approx(3)
    assert d["repairs"][0]["duration_h"] == pytest.approx(2)
    assert [o["status"] for o in d["orders"]] == ["approved", "completed"]
    assert client.get("/api/v1/assets/no-such-asset", headers=viewer).status_code == 404


def test_telemetry_raw_bucketed_and_from_rollups(client, viewer, db, fleet):
    a0 = fleet["assets"][0]
    dev = f"d0-{a0.split('-', 1)[1]}"
    t0 = (NOW - timedelta(days=1)).replace(hour=0, minute=0, second=0)
    # one reading every 10 s for 3 h; bearing_temp (position 1) = minute index, NULL at second 30
    rows = []
    for k in range(3 * 360):
        t = t0 + timedelta(seconds=10 * k)
        temp = None if t.second == 30 else float(k // 6)
        rows.append((t, dev, [1.0, temp, 5.0, 2.0]))
    with db.cursor() as cur, cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
    url = f"/api/v1/assets/{a0}/telemetry"

    raw = client.get(url, headers=viewer, params={
        "sensor": "bearing_temp", "from": t0.isoformat(), "to": (t0 + timedelta(minutes=2)).isoformat()})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["resolution"] == "raw" and body["unit"] == "degC" and body["device_id"] == dev
    assert [p["avg"] for p in body["points"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]   # no NULLs

    q = {"sensor": "bearing_temp", "from": t0.isoformat(), "to": (t0 + timedelta(hours=3)).isoformat()}
    minute = client.get(url, headers=viewer, params=q).json()
    assert minute["resolution"] == "1m" and minute["source"] == "telemetry"
    assert len(minute["points"]) == 180
    assert minute["points"][7] | {"t": None} == {"t": None, "avg": 7, "min": 7, "max": 7, "n": 5}

    hourly = client.get(url, headers=viewer, params={**q, "resolution": "1h"}).json()
    assert [p["n"] for p in hourly["points"]] == [300, 300, 300]
    assert hourly["points"][0]["avg"] == pytest.approx(29.5)                 # mean of 0..59

    # rollups for the first 2 hours (with a marker value the raw rows do not have): they are
    # used up to their last bucket, the third hour comes from the raw rows
    with db.cursor() as cur:
        cur.executemany(
            """INSERT INTO telemetry_1m (device_id, bucket, n, cnt, avg_vals, min_vals, max_vals)
               VALUES (%s, %s, 6, '{6,5,6,6}', %s, %s, %s)""",
            [(dev, t0 + timedelta(minutes=i), [1, 1000 + i, 5, 2], [1, 1000 + i, 5, 2],
              [1, 1000 + i, 5, 2]) for i in range(120)],
        )
    mixed = client.get(url, headers=viewer, params=q).json()
    assert mixed["source"] == "telemetry_1m+telemetry" and len(mixed["points"]) == 180
    assert mixed["points"][7]["avg"] == 1007 and mixed["points"][150]["avg"] == 150

    latest = client.get(url, headers=viewer, params={"sensor": "vibration_rms"}).json()
    assert latest["to"] > rows[-1][0].isoformat()[:19] and latest["resolution"] == "1m"
    assert latest["points"][-1]["avg"] == 1.0
    last_hour = client.get(url, headers=viewer, params={"sensor": "vibration_rms", "hours": 1}).json()
    assert last_hour["resolution"] == "raw" and len(last_hour["points"]) == 360
    assert client.get(url, headers=viewer, params={"sensor": "vibration_rms", "hours": 0}).status_code == 422

    assert client.get(url, headers=viewer, params={"sensor": "nope"}).status_code == 404
    assert client.get(f"/api/v1/assets/{fleet['assets'][2]}/telemetry", headers=viewer,
                      params={"sensor": "bearing_temp"}).status_code == 404     # no device
    assert client.get(url, headers=viewer, params={**q, "resolution": "5m"}).status_code == 422
    assert client.get(url, headers=viewer, params={"sensor": "bearing_temp", "from": q["to"],
                                                   "to": q["from"]}).status_code == 422
    assert client.get(url, headers=viewer, params={"sensor": "bearing_temp"}).status_code == 200
