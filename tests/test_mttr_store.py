"""The repair-time model against the real database: what it learns from (completed repairs
with the technician's record, the censoring cut), storing and reloading it, the refit
schedule, ``predicted_mttr`` for an asset, and the simulator's repairs carrying the
technician's record but not the simulator's draws."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from detection.mttr import MttrCache, intervals, predicted_mttr, predicted_quantiles, store
from detection.mttr.history import load_repairs
from simulator.backfill import _record_events
from simulator.catalog import CATALOG
from simulator.fleet import Fleet, FleetSpec
from simulator.technicians import OBSERVED, SKILL_FACTOR
from tests import seed

T0 = datetime(2025, 2, 3, 8, tzinfo=timezone.utc)


def _repair(db, asset, mode, start, hours, **detail):
    db.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at, detail) VALUES (%s, %s, %s, %s, %s)",
               (asset, mode, start, start + timedelta(hours=hours), Jsonb(detail)))


@pytest.fixture
def fleet_db(db, uid):
    m, assets = f"MT-{uid}", [f"MTA{i}-{uid}" for i in range(4)]
    seed.add_small_fleet(db, m, f"MTC-{uid}", assets)
    return m, assets


def test_history_reads_the_technicians_record_and_cuts_censored_repairs(db, fleet_db):
    m, assets = fleet_db
    as_of = T0 + timedelta(days=30)
    _repair(db, assets[0], "bearing_wear", T0, 5.0, technician_id="t1", skill_level=3, parts_on_hand=True,
            region="north")
    _repair(db, assets[1], "bearing_wear", T0 + timedelta(days=1), 7.0, skill_level=9, parts_on_hand="unknown")
    _repair(db, assets[2], "bearing_wear", as_of - timedelta(hours=5), 2.0)            # within the window
    _repair(db, assets[3], "seal_leak", as_of - timedelta(hours=1), 10.0)              # not finished yet
    seed.add_downtime(db, assets[3], T0 + timedelta(days=2), None)                     # still down: censored
    df, cut = load_repairs(db, as_of=as_of, window_h=24.0)
    mine = df[df["model_id"] == m].sort_values("start").reset_index(drop=True)
    assert len(mine) == 2                              # the recent one and the unfinished one are cut
    first, second = mine.iloc[0], mine.iloc[1]
    assert (first["skill_level"], bool(first["parts_on_hand"]), first["region"], first["duration_h"]) == (3, True, "north", 5.0)
    assert np.isnan(second["skill_level"]) and second["parts_on_hand"] is None   # unreadable: unknown
    assert cut["censored"] >= 1 and cut["recent_excluded"] >= 1 and cut["window_h"] == 24.0


def test_stored_model_predicts_for_an_asset_and_refits_on_schedule(settings, fleet_db):
    m, assets = fleet_db
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for i in range(3):
            _repair(conn, assets[i], "seal_leak", T0 + timedelta(days=i), 3.0 + i)
        first = store.refresh(conn, max_age_s=0.0)                    # due: fits and stores
        assert store.refresh(conn, max_age_s=3600.0) == first          # fresh: kept
        summary = conn.execute("SELECT summary FROM mttr_models WHERE id = %s", (first,)).fetchone()[0]
        assert summary["groups"][f"{m}|seal_leak"] == {"repairs": 3, "route": "manual"}
        cache = MttrCache(conn)
        median, lo, hi = predicted_mttr(cache, assets[0], "seal_leak")
        assert median == pytest.approx(4.0, abs=0.01)                  # 3 repairs: the manual's 4 h
        assert lo < median < hi and hi / lo > 3
        assert predicted_mttr(conn, assets[0], "seal_leak", kind="predictive", skill_level=3) == (median, lo, hi)
        assert predicted_mttr(cache, assets[0], "no_such_mode") == (None, None, None)
        [p] = intervals(cache, [{"model_id": m, "mode": "electrical"}], alpha=0.1)
        assert p["basis"] == "manual" and p["median_h"] == pytest.approx(3.0, abs=0.01) and p["coverage"] == 0.9
        with pytest.raises(LookupError, match="no asset"):
            predicted_mttr(cache, "no-such-asset", "seal_leak")
        with pytest.raises(ValueError, match="unknown repair context"):
            predicted_mttr(cache, assets[0], "seal_leak", technician="t1")
        qs = np.round(np.linspace(0.01, 0.99, 99), 2)
        dist = predicted_quantiles(cache, assets[0], "seal_leak", qs)
        assert np.all(np.isfinite(dist)) and np.all(np.diff(dist) >= 0)
        assert dist[49] == pytest.approx(median, abs=0.01)
        assert store.refresh(conn, max_age_s=0.0) > first              # due again: a new version


def test_simulated_repairs_record_the_technician_not_the_draws(db, settings):
    fleet = Fleet(FleetSpec(n_assets=40, seed=4, start=T0, id_prefix="mtsim", hazard_scale=20.0,
                            sensor_faults=False))
    for _ in range(60):
        fleet.step(None, 1, 6 * 3600.0)
        for a in fleet.assets[:2]:
            try:
                fleet.apply_maintenance(a.asset_id, "bearing_wear")
            except ValueError:
                pass
    ends = [e for e in fleet.ground_truth.events if e["event"] == "repair_end" and e.get("kind") != "preventive"]
    kinds = {e["kind"] for e in ends}
    assert kinds == {"corrective", "predictive"}
    for e in ends:
        site = fleet.sites[fleet.asset(e["asset_id"]).site_id]
        assert e["region"] == site.region and e["technician_id"].startswith(f"mtsim-t-{site.region}-")
        tech = next(t for t in fleet.technicians[site.region] if t.tech_id == e["technician_id"])
        assert e["skill_level"] == tech.skill and e["drawn"]["skill_factor"] == SKILL_FACTOR[tech.skill]
        assert e["parts_on_hand"] == (e["parts_delay_h"] == 0.0)
        # the hands-on time is the manual's figure times the drawn factors, skill and shift included
        d = e["drawn"]
        pm = CATALOG[fleet.asset(e["asset_id"]).model_id]
        book = next(fm.mttr_h for fm in pm.failure_modes if fm.mode == e["mode"])
        planned = 0.6 if e["kind"] == "predictive" else 1.0
        expected = (book * planned * d["model_factor"] * d["site_factor"] * d["noise"] * d["skill_factor"]
                    * d["shift_factor"])
        assert e["duration_h"] - e["parts_delay_h"] == pytest.approx(expected, rel=2e-3, abs=2e-3)
    from simulator.register import register_fleet
    register_fleet(settings, fleet, provision_devices=False)
    with psycopg.connect(settings.dsn) as conn:
        with conn.cursor() as cur:
            _record_events(cur, fleet, [e for e in fleet.ground_truth.events if e["event"] != "inventory"])
        conn.commit()
    details = [r[0] for r in db.execute(
        "SELECT r.detail FROM repairs r JOIN assets a USING (asset_id) WHERE a.asset_id LIKE 'mtsim-%%' "
        "AND r.kind <> 'preventive'").fetchall()]
    assert len(details) == len(ends)
    for d in details:
        assert set(OBSERVED) <= set(d) and "drawn" not in d


def test_a_device_reported_repair_keeps_its_kind_and_the_technicians_record(db, fleet_db):
    from ingest.events import apply_events
    from ingest.parse import StateEvent

    _, assets = fleet_db
    dev = f"dev-{assets[0]}"
    record = {"technician_id": "t-north-1", "skill_level": 1, "parts_on_hand": False, "region": "north"}
    events = [StateEvent(dev, T0, "repair_started", "preventive", None, {"kind": "preventive"}),
              StateEvent(dev, T0 + timedelta(hours=3), "repair_finished", "preventive", None,
                         {"kind": "preventive", **record}),
              StateEvent(dev, T0 + timedelta(hours=5), "repair_started", "seal_leak", None, {}),
              StateEvent(dev, T0 + timedelta(hours=9), "repair_finished", "seal_leak", None,
                         {"kind": "no-such-kind", **record})]
    with db.cursor() as cur:
        apply_events(cur, [(e, assets[0]) for e in events])
    rows = db.execute("SELECT mode, kind, detail FROM repairs WHERE asset_id = %s ORDER BY started_at",
                      (assets[0],)).fetchall()
    assert [(m, k) for m, k, _ in rows] == [("preventive", "preventive"), ("seal_leak", "corrective")]
    assert all({k: d[k] for k in record} == record for _, _, d in rows)
    df, _ = load_repairs(db, as_of=T0 + timedelta(days=30), window_h=24.0)
    mine = df[df["model_id"] == fleet_db[0]]                 # preventive services are not fitted
    assert mine["mode"].tolist() == ["seal_leak"] and mine["skill_level"].tolist() == [1]


def test_the_api_shows_each_live_orders_repair_time_interval(client, viewer, db, fleet_db):
    m, assets = fleet_db
    seed.add_order(db, assets[0], "seal_leak", opened_at=T0)
    seed.add_order(db, assets[1], "bearing_wear", opened_at=T0, kind="corrective")
    r = client.get("/api/v1/mttr", headers=viewer, params={"model": m})
    assert r.status_code == 200, r.text
    orders = {o["mode"]: o for o in r.json()["open_orders"]}
    for mode, nominal in (("seal_leak", 4.0), ("bearing_wear", 6.0)):
        o = orders[mode]                  # no repairs of this model: the manual's figure, wide
        assert o["mttr_basis"] == "manual" and o["model_mttr_h"] == pytest.approx(nominal, abs=0.01)
        assert o["mttr_lo_h"] < o["model_mttr_h"] < o["mttr_hi_h"] and o["mttr_coverage"] == 0.8
