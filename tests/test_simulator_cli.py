"""``prognos simulate`` subcommands (simulator.cli.main)."""

from __future__ import annotations

import json

import orjson
import pytest

from simulator.cli import main
from simulator.ground_truth import GroundTruth


@pytest.fixture
def world_env(world, monkeypatch):
    for k, v in world.env().items():
        monkeypatch.setenv(k, v)
    return world.settings


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--rate-hz", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["run", "--misbehave", "explode"])
    with pytest.raises(SystemExit):
        main(["backfill", "--start", "yesterday"])


def test_backfill_then_score(world_env, db, uid, tmp_path, capsys):
    gt_path = tmp_path / "gt.jsonl"
    rc = main(["backfill", "--assets", "5", "--seed", "3", "--prefix", f"cli{uid}", "--days", "0.5",
               "--step-s", "300", "--no-progress", "--hazard-scale", "30",
               "--ground-truth", str(gt_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rows"] == 5 * 144
    n = db.execute("SELECT count(*) FROM telemetry WHERE device_id LIKE %s",
                   (f"cli{uid}-%",)).fetchone()[0]
    assert n == out["rows"]
    gt = GroundTruth.read_jsonl(gt_path)
    assert len(gt.asset_ids) == 5
    orders = tmp_path / "orders.jsonl"
    onset = next((e for e in gt.events if e["event"] == "onset"), None)
    lines = [{"asset_id": gt.asset_ids[0], "mode": "fouling", "opened_at": gt.events[0]["t"]}]
    if onset:
        lines.append({"asset_id": onset["asset_id"], "mode": onset["mode"],
                      "opened_at": onset["t"]})
    orders.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    rc = main(["score", "--ground-truth", str(gt_path), "--orders", str(orders)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    in_period = sum(1 for x in lines if x["opened_at"] >= gt.events[0]["t"])
    assert res["orders"] == in_period >= 1 and "recall_24h" in res
    # the same period again: refused with a clear message, nothing written
    rc = main(["backfill", "--assets", "5", "--seed", "3", "--prefix", f"cli{uid}", "--days", "0.5",
               "--step-s", "300", "--no-progress", "--start", out["start"],
               "--ground-truth", str(tmp_path / "gt2.jsonl")])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_score_without_ground_truth_fails_clearly(world_env, tmp_path):
    with pytest.raises(SystemExit, match="no ground truth"):
        main(["score", "--ground-truth", str(tmp_path / "missing.jsonl")])


def test_run_continues_after_existing_telemetry(world_env, db, uid, tmp_path, capsys):
    args = ["--assets", "3", "--seed", "2", "--prefix", f"cr{uid}"]
    assert main(["backfill", *args, "--days", "0.25", "--step-s", "300", "--no-progress",
                 "--ground-truth", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    last = db.execute("SELECT max(time) FROM telemetry WHERE device_id LIKE %s",
                      (f"cr{uid}-%",)).fetchone()[0]
    # one reading a second: the run is capped at real time, and the backfill may have ended only
    # seconds ago (at 0.01 Hz it could make no step at all within its 2 s)
    assert main(["run", *args, "--rate-hz", "1", "--acceleration", "100000", "--duration", "2",
                 "--ground-truth", str(tmp_path / "b.jsonl")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["readings"] > 0
    # the run replayed the backfilled fleet and continued it: one fleet, one ground truth
    before = GroundTruth.read_jsonl(tmp_path / "a.jsonl").events
    after = GroundTruth.read_jsonl(tmp_path / "b.jsonl").events
    assert after[: len(before)] == before
    assert all(e["t"] > last.strftime("%Y-%m-%dT%H:%M:%S") for e in after[len(before):]
               if e["event"] != "onset" or not e.get("pre_existing"))


def test_run_after_someone_elses_telemetry_starts_after_it(world_env, db, uid, tmp_path, capsys):
    args = ["--assets", "3", "--seed", "2", "--prefix", f"cs{uid}"]
    assert main(["backfill", *args, "--days", "0.25", "--step-s", "300", "--no-progress",
                 "--ground-truth", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    world_env.state_dir.joinpath("simulator", "history.json").unlink()   # no record of it
    last = db.execute("SELECT max(time) FROM telemetry WHERE device_id LIKE %s",
                      (f"cs{uid}-%",)).fetchone()[0]
    # one reading a second: the run is capped at real time, and the backfill may have ended only
    # seconds ago (at 0.01 Hz it could make no step at all within its 2 s)
    assert main(["run", *args, "--rate-hz", "1", "--acceleration", "100000", "--duration", "2",
                 "--ground-truth", str(tmp_path / "b.jsonl")]) == 0
    gt = GroundTruth.read_jsonl(tmp_path / "b.jsonl")
    assert gt.events[0]["t"] > last.strftime("%Y-%m-%dT%H:%M:%S")   # started after it


def test_unreachable_database_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("PROGNOS_DB_PORT", "1")
    rc = main(["register", "--assets", "2"])
    assert rc == 2
    assert "prognos simulate register:" in capsys.readouterr().err
