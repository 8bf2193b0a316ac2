"""Fleet physics, failure modes, repairs, maintenance and ground truth (pure: no services)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from simulator.catalog import CATALOG
from simulator.fleet import Fleet, FleetSpec
from simulator.ground_truth import GroundTruth

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday


def _fleet(n=30, seed=3, **kw):
    return Fleet(FleetSpec(n_assets=n, seed=seed, start=T0, **kw))


def _series(fleet, asset_id, sensor, days, dt=300.0):
    a = fleet.asset(asset_id)
    pm = CATALOG[a.model_id]
    s = pm.sensor_index(sensor)
    out = []
    for _ in range(days):
        b = fleet.step(None, int(86400 // dt), dt)
        times, ids, v = b[a.model_id]
        out.append(v[:, ids.index(a.device_id), s])
    return np.concatenate(out)


def test_catalog_models_have_sensors_modes_and_condition_inputs():
    for pm in CATALOG.values():
        assert 8 <= len(pm.sensors) <= 16
        modes = {fm.mode for fm in pm.failure_modes}
        assert {"bearing_wear", "seal_leak", "fouling", "electrical", "sudden"} <= modes
        assert "load_pct" in pm.condition_sensors and "ambient_temp" in pm.condition_sensors
        for fm in pm.failure_modes:
            assert fm.predictable == bool(fm.sensors)
            for s in fm.sensors:
                pm.sensor_index(s)
        for s in pm.sensors:
            assert s.lo < s.nominal < s.hi, (pm.model_id, s.name)


def test_step_shapes_types_ranges():
    fleet = _fleet(n=40)
    block = fleet.step(T0, 120, 60.0)
    assert set(block) == set(CATALOG)
    n = 0
    for mid, (times, ids, v) in block.items():
        pm = CATALOG[mid]
        assert times.dtype == np.dtype("datetime64[ns]") and len(times) == 120
        assert v.shape == (120, len(ids), len(pm.sensors)) and v.dtype == np.float32
        assert times[1] - times[0] == np.timedelta64(60, "s")
        lo, hi = pm.sensor_param("lo"), pm.sensor_param("hi")
        ok = np.isnan(v) | ((v >= lo) & (v <= hi))
        assert ok.all()
        n += len(ids)
    assert n == 40
    assert fleet.clock == T0 + timedelta(hours=2)
    with pytest.raises(ValueError, match="continues"):
        fleet.step(T0, 10, 60.0)


def test_same_seed_same_fleet_readings_and_ground_truth():
    a, b = _fleet(seed=9, hazard_scale=20), _fleet(seed=9, hazard_scale=20)
    for _ in range(5):
        ba, bb = a.step(None, 288, 300.0), b.step(None, 288, 300.0)
        for mid in ba:
            np.testing.assert_array_equal(ba[mid][2], bb[mid][2])
    assert a.ground_truth.events == b.ground_truth.events
    assert a.assets == b.assets
    c = _fleet(seed=10, hazard_scale=20)
    c.step(None, 288, 300.0)
    assert c.ground_truth.events != a.ground_truth.events[: len(c.ground_truth.events)]


def test_bearing_wear_raises_vibration_and_temperature_then_fails_and_is_repaired():
    fleet = _fleet(n=6, hazard_scale=0, sensor_faults=False, pre_existing=False,
                   models=["PMP-200"])
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "bearing_wear", rate=1 / 60)        # fails after ~60 h of running
    vib = _series(fleet, aid, "vibration_rms", 8)
    events = [e for e in fleet.ground_truth.of(aid) if e["event"] != "sensor_fault"]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["onset", "failure", "downtime_start"]
    assert {"repair_start", "repair_end", "downtime_end"} <= set(kinds)
    fail_t = datetime.fromisoformat(events[1]["t"].replace("Z", "+00:00"))
    j = int((fail_t - T0).total_seconds() // 300)
    day1 = np.nanmedian(vib[:288][vib[:288] > 0.5])
    before = np.nanmedian(vib[j - 36:j][vib[j - 36:j] > 0.5])
    assert before > day1 + 2.0                          # accelerating wear shows late
    # the damage accelerates: the last quarter rises more than the first half
    h = j // 2
    assert (before - np.nanmedian(vib[h - 36:h])) > (np.nanmedian(vib[h - 36:h]) - day1)
    # stopped while down
    assert np.nanmax(vib[j + 1:j + 12]) < 0.6
    assert fleet.health(aid)["bearing_wear"] == 0.0    # repaired (as new)


def test_failure_modes_move_their_sensors():
    for mode, sensor, sign in [("seal_leak", "flow_rate", -1), ("fouling", "motor_current", 1),
                               ("fouling", "motor_temp", 1)]:
        fleet = _fleet(n=4, hazard_scale=0, sensor_faults=False, pre_existing=False,
                       models=["PMP-200"])
        healthy = _fleet(n=4, hazard_scale=0, sensor_faults=False, pre_existing=False,
                         models=["PMP-200"])
        aid = fleet.assets[0].asset_id
        fleet.inject(aid, mode, rate=1 / 400)
        x = _series(fleet, aid, sensor, 10)
        y = _series(healthy, aid, sensor, 10)
        late = slice(-288 * 2, None)
        assert sign * (np.nanmean(x[late]) - np.nanmean(y[late])) > 0, (mode, sensor)


def test_electrical_fault_spikes_grow():
    fleet = _fleet(n=4, hazard_scale=0, sensor_faults=False, pre_existing=False,
                   models=["CMP-75"])
    healthy = _fleet(n=4, hazard_scale=0, sensor_faults=False, pre_existing=False,
                     models=["CMP-75"])
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "electrical", rate=1 / 150)
    x = _series(fleet, aid, "motor_current", 6, dt=60)
    y = _series(healthy, aid, "motor_current", 6, dt=60)
    resid = x - y
    spikes = np.nan_to_num(resid) > 20
    early, late = spikes[: len(x) // 3].sum(), spikes[len(x) // 3: 2 * len(x) // 3].sum()
    assert late > early


def test_electrical_fault_trips_are_reported_as_fault_codes():
    fleet = _fleet(n=4, hazard_scale=0, sensor_faults=False, pre_existing=False,
                   models=["CMP-75"])
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "electrical", rate=1 / 60)
    codes = []
    for _ in range(12):
        fleet.step(None, 1440, 60.0)
        codes += fleet.last_device_faults
        if any(e["event"] == "failure" for e in fleet.ground_truth.of(aid)):
            break
    assert codes and {c["code"] for c in codes} == {"E42"}
    assert {c["device_id"] for c in codes} == {fleet.asset(aid).device_id}
    fail = [e for e in fleet.ground_truth.of(aid) if e["event"] == "failure"]
    assert fail and min(c["t"] for c in codes) < fail[0]["t"]   # trips precede the failure


def test_predictive_maintenance_restores_and_is_logged():
    fleet = _fleet(n=4, hazard_scale=0, pre_existing=False, models=["CHL-500"])
    aid = fleet.assets[1].asset_id
    fleet.inject(aid, "fouling", rate=1 / 300)
    fleet.step(None, 24 * 6, 600.0)
    assert fleet.health(aid)["fouling"] > 0
    ev = fleet.apply_maintenance(aid, "fouling", kind="predictive", order_id=7)
    assert ev["restored"] and ev["order_id"] == 7 and ev["damage"] > 0
    assert fleet.health(aid)["fouling"] == 0.0
    assert fleet.is_down(aid)
    with pytest.raises(ValueError, match="is down"):
        fleet.apply_maintenance(aid, "fouling")
    fleet.step(None, 24 * 6, 600.0)
    kinds = [e["event"] for e in fleet.ground_truth.of(aid)]
    assert "failure" not in kinds and kinds.count("repair_end") == 1
    assert not fleet.is_down(aid)


def test_preventive_maintenance_partly_restores():
    fleet = _fleet(n=4, hazard_scale=0, pre_existing=False, models=["PMP-200"])
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "bearing_wear", rate=1 / 150)
    fleet.inject(aid, "fouling", rate=1 / 400)
    fleet.step(None, 6 * 24 * 5, 600.0)
    h0 = fleet.health(aid)
    ev = fleet.apply_maintenance(aid, None, kind="preventive")
    h1 = fleet.health(aid)
    assert h1["fouling"] == 0.0 and "fouling" in ev["cleared"]
    assert 0 < h1["bearing_wear"] < h0["bearing_wear"]


def test_inject_and_maintenance_reject_bad_input():
    fleet = _fleet(n=3)
    aid = fleet.assets[0].asset_id
    with pytest.raises(ValueError, match="no failure mode"):
        fleet.inject(aid, "corrosion")
    with pytest.raises(KeyError):
        fleet.inject("nope", "bearing_wear")
    with pytest.raises(ValueError, match="before the fleet clock"):
        fleet.inject(aid, "fouling", at=T0 - timedelta(hours=1))
    with pytest.raises(ValueError, match="kind"):
        fleet.apply_maintenance(aid, "fouling", kind="magic")
    with pytest.raises(ValueError):
        FleetSpec(n_assets=0)
    with pytest.raises(ValueError, match="unknown product"):
        FleetSpec(models=["XYZ"])


def test_sudden_failure_has_no_precursor():
    fleet = _fleet(n=3, hazard_scale=0, sensor_faults=False, pre_existing=False,
                   models=["PMP-200"])
    aid = fleet.assets[0].asset_id
    fleet.inject(aid, "sudden", at=T0 + timedelta(hours=30))
    fleet.step(None, 48, 3600.0)
    evs = fleet.ground_truth.of(aid)
    assert [e["event"] for e in evs][:2] == ["failure", "downtime_start"]
    assert evs[0]["mode"] == "sudden" and evs[0]["t"].startswith("2026-03-03T06:00")


def test_natural_fleet_has_every_kind_of_event_and_preexisting_degradation():
    fleet = _fleet(n=150, seed=5)
    for _ in range(21):
        fleet.step(None, 96, 900.0)
    c = Counter(e["event"] for e in fleet.ground_truth.events)
    for k in ("onset", "failure", "downtime_start", "downtime_end", "repair_start", "repair_end",
              "maintenance", "sensor_fault"):
        assert c[k] > 0, k
    pre = [e for e in fleet.ground_truth.events if e.get("pre_existing")]
    assert pre and all(e["t"] < "2026-03-02" for e in pre)
    modes = Counter(e["mode"] for e in fleet.ground_truth.events if e["event"] == "failure")
    assert len(modes) >= 4
    # onset to failure: days to weeks
    eps = [e for e in fleet.ground_truth.episodes() if e.ended_by == "failure"]
    days = [(e.end - e.onset).total_seconds() / 86400 for e in eps]
    assert 2 < np.median(days) < 40


def test_sensor_faults_are_logged_and_visible():
    fleet = _fleet(n=60, seed=2)
    blocks = [fleet.step(None, 96, 900.0) for _ in range(20)]
    faults = [e for e in fleet.ground_truth.events if e["event"] == "sensor_fault"]
    assert faults and {f["kind"] for f in faults} <= {"stuck", "dropout", "spiky"}
    total = sum(np.isnan(b[m][2]).sum() for b in blocks for m in b)
    assert total > 0


def test_ground_truth_roundtrip(tmp_path):
    fleet = _fleet(n=50, hazard_scale=5)
    fleet.step(None, 96, 900.0)
    p = fleet.ground_truth.write_jsonl(tmp_path / "gt.jsonl")
    back = GroundTruth.read_jsonl(p)
    assert back.events == fleet.ground_truth.sorted_events()
    assert back.asset_ids == [a.asset_id for a in fleet.assets]
    (tmp_path / "bad.jsonl").write_text('{"t": "x", "event": "explode"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        GroundTruth.read_jsonl(tmp_path / "bad.jsonl")


def test_start_stop_transitions_follow_the_machines():
    fleet = _fleet(n=30, seed=8, hazard_scale=10, sensor_faults=False)
    for _ in range(3):
        block = fleet.step(None, 96, 900.0)
        for mid, (times, ids, v) in block.items():
            speed = v[:, :, CATALOG[mid].sensor_index("speed_rpm")]
            for j, i, running in fleet.last_transitions[mid]:
                if not np.isnan(speed[j, i]):
                    assert (speed[j, i] > 100) == running
                if j > 0 and not np.isnan(speed[j - 1, i]):
                    assert (speed[j - 1, i] > 100) != running
        assert sum(len(x) for x in fleet.last_transitions.values()) > 0


def test_any_chunking_of_the_same_period_gives_the_same_fleet():
    spec = dict(n=40, seed=13, hazard_scale=30)
    a, b = _fleet(**spec), _fleet(**spec)
    va = a.step(None, 3 * 288, 300.0)
    chunks, done, k = [], 0, 1
    while done < 3 * 288:
        n = min(k, 3 * 288 - done)
        chunks.append(b.step(None, n, 300.0))
        done += n
        k = k * 3 % 97 + 1                       # 1, 4, 13, 40, 24, ... irregular
    for mid in va:
        vb = np.concatenate([c[mid][2] for c in chunks])
        np.testing.assert_allclose(va[mid][2], vb, rtol=2e-5, atol=2e-5)
        np.testing.assert_array_equal(np.isnan(va[mid][2]), np.isnan(vb))
    ea = sorted(a.ground_truth.events, key=lambda e: (e["t"], e["asset_id"], e["event"]))
    eb = sorted(b.ground_truth.events, key=lambda e: (e["t"], e["asset_id"], e["event"]))
    assert ea == eb
    assert sum(e["event"] == "failure" for e in ea) > 3


def test_repairs_report_the_as_found_condition_and_fix_what_they_find_degraded():
    """Every visit reports a grade per mode, within one step of the true damage band (misgraded
    now and then); a mode found degraded or worse is fixed while there; a failed mode is found
    failed."""
    from simulator.fleet import GRADE_BANDS, GRADES

    fleet = _fleet(n=40, hazard_scale=0, pre_existing=False, sensor_faults=False, models=["PMP-200"])
    ids = [a.asset_id for a in fleet.assets]
    for k, aid in enumerate(ids):
        fleet.inject(aid, "fouling", rate=1 / (15 + 8 * k))    # from new-looking to failed by day 3
    fleet.step(None, 6 * 72, 600.0)
    failed = {e["asset_id"] for e in fleet.ground_truth.events if e["event"] == "failure"}
    truth = {}
    for aid in ids:
        if aid in failed:
            continue
        truth[aid] = int(np.searchsorted(GRADE_BANDS, fleet.health(aid)["fouling"], side="right"))
        fleet.apply_maintenance(aid, "seal_leak", kind="predictive")
    assert failed and len(set(truth.values())) == 3                    # every band is visited
    fleet.step(None, 6 * 24 * 6, 600.0)
    ends = {}
    for e in fleet.ground_truth.events:
        if e["event"] == "repair_end":
            ends.setdefault(e["asset_id"], e)
    off = 0
    for aid, k in truth.items():
        e = ends[aid]
        assert set(e["as_found"]) == set(fleet.groups["PMP-200"].modes)
        got = GRADES.index(e["as_found"]["fouling"])
        assert abs(got - k) <= 1
        off += got != k
        assert e["as_found"]["seal_leak"] in ("good", "worn")        # nothing under way: good, or misgraded
        fixed = got >= GRADES.index("degraded")
        assert ("fouling" in e.get("restored", [])) == fixed
        if fixed:
            assert fleet.health(aid)["fouling"] == 0.0
    assert off <= len(truth) // 2                                        # misgrading is the exception
    for aid in failed:
        e = ends[aid]
        assert e["kind"] == "corrective" and e["mode"] == "fouling"
        assert e["as_found"]["fouling"] in ("failed", "degraded")
