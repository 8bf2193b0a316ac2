"""Simulator throughput: physics, backfill into TimescaleDB, live publishing through Mosquitto.

Three figures, each against a trivial baseline measured in the same run (the machine is shared
and noisy; compare the ratios):

* **physics**: readings/s of ``Fleet.step`` for ``--devices`` devices at 1 Hz (1-second
  steps), and the head-room to drive them in real time (wall time per simulated second);
  baseline: the sine-plus-noise generator of public device simulators, same array shape.
* **backfill**: rows/s of :func:`simulator.backfill.backfill` (physics, binary COPY, outbox,
  downtime/repairs) into a fresh database; baseline: binary COPY of the same number of
  constant rows (nothing simulated, nothing encoded but the COPY).
* **realtime**: ``--devices`` devices at 1 Hz, acceleration 1: lag behind schedule and the
  idle fraction of the loop (one process, every device its own MQTT connection).
* **live**: readings/s and messages/s the live runner publishes through the real Mosquitto
  (every device its own connection and credentials, QoS 1, acknowledged); baseline: one bare
  paho client publishing pre-encoded messages of the same size at QoS 1.

    python -m benchmarks.simulator [--quick] --json PATH
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np

from benchmarks.common import parser, write
from prognos.logs import setup_logging
from simulator.catalog import CATALOG
from simulator.fleet import Fleet, FleetSpec


def _spec(n, start, prefix="bench"):
    return FleetSpec(n_assets=n, seed=5, start=start, id_prefix=prefix)


def bench_physics(n_devices: int, seconds: int) -> dict:
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    fleet = Fleet(_spec(n_devices, start))
    fleet.step(None, 5, 1.0)                                 # warm-up (thermal state etc.)
    per_call = 10                                            # 10 simulated seconds per call
    t0 = time.perf_counter()
    n = 0
    for _ in range(max(1, seconds // per_call)):
        b = fleet.step(None, per_call, 1.0)
        n += sum(v[2].shape[0] * v[2].shape[1] for v in b.values())
    el = time.perf_counter() - t0
    # one call per simulated second (the live runner's pattern at 1 Hz in real time)
    t1 = time.perf_counter()
    k = 10
    for _ in range(k):
        fleet.step(None, 1, 1.0)
    per_s = (time.perf_counter() - t1) / k
    # encoding the readings into contract payloads (what publishing costs on top)
    from schemas.telemetry import encode_readings
    b = fleet.step(None, 10, 1.0)
    te = time.perf_counter()
    n_enc = 0
    for mid, (times, ids, values) in b.items():
        names = CATALOG[mid].sensor_names
        ts = (times.astype("datetime64[ms]").astype(np.int64) / 1000.0).tolist()
        vals = values.tolist()
        for i in range(len(ids)):
            encode_readings([(ts[j], dict(zip(names, vals[j][i]))) for j in range(len(ts))])
            n_enc += len(ts)
    enc_rate = n_enc / (time.perf_counter() - te)
    # baseline: sine + noise, same shapes
    rng = np.random.default_rng(0)
    shapes = [(per_call, len(g.device_ids), len(g.pm.sensors)) for g in fleet.groups.values()]
    tb = time.perf_counter()
    nb = 0
    for step in range(max(1, seconds // per_call)):
        for T, d, s in shapes:
            t = (step * per_call + np.arange(T, dtype=np.float32))[:, None, None]
            x = 10 + 3 * np.sin(t / 60.0 + np.arange(d, dtype=np.float32)[None, :, None])
            x = x + rng.standard_normal((T, d, s), dtype=np.float32)
            nb += T * d
    elb = time.perf_counter() - tb
    rate, base = n / el, nb / elb
    return {"devices": n_devices, "readings": n, "seconds": round(el, 3),
            "readings_per_s": round(rate), "baseline_sine_noise_readings_per_s": round(base),
            "ratio_to_baseline": round(rate / base, 3),
            "wall_s_per_simulated_s_at_1hz": round(per_s, 4),
            "realtime_headroom_x": round(1.0 / per_s, 2),
            "payload_encode_readings_per_s": round(enc_rate)}


def bench_backfill(settings, n_devices: int, hours: float, step_s: float) -> dict:
    import psycopg

    from simulator.backfill import backfill
    from simulator.register import register_fleet

    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    start = end - timedelta(hours=hours)
    fleet = Fleet(_spec(n_devices, start, "bf"))
    register_fleet(settings, fleet, provision_devices=False)
    t0 = time.perf_counter()
    rows = backfill(settings, fleet, start, end, step_s=step_s, outbox=True, progress=False,
                    rollups=False)
    el = time.perf_counter() - t0
    # baseline: COPY of the same number of constant rows (12 values), nothing simulated
    vals = [1.0] * 12
    t_base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        tb = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            per = 50_000
            for k0 in range(0, rows, per):
                with cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["timestamptz", "text", "float4[]"])
                    for k in range(k0, min(rows, k0 + per)):
                        cp.write_row((t_base + timedelta(seconds=k // 1000), f"base-{k % 1000:04d}",
                                      vals))
        elb = time.perf_counter() - tb
    rate, base = rows / el, rows / elb
    return {"devices": n_devices, "hours": hours, "step_s": step_s, "rows": rows,
            "seconds": round(el, 3), "rows_per_s": round(rate),
            "baseline_constant_copy_rows_per_s": round(base), "ratio_to_baseline": round(rate / base, 3)}


def bench_live(settings, n_devices: int, seconds: float, batch: int) -> dict:
    import paho.mqtt.client as mqtt

    from schemas.telemetry import encode_readings
    from simulator.register import register_fleet
    from simulator.runner import LiveRunner, RunOptions

    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=6)
    fleet = Fleet(_spec(n_devices, start, "lv"))
    creds = register_fleet(settings, fleet)
    opts = RunOptions(acceleration=1e6, rate_hz=1.0, batch=batch, qos=1, duration_s=seconds)
    runner = LiveRunner(settings, fleet, opts, credentials=creds)
    t0 = time.perf_counter()
    out = runner.run()
    el = time.perf_counter() - t0
    readings, msgs = out["readings"], out["messages"]
    # baseline: one paho client, QoS 1, the same payload size, same number of messages
    pm = CATALOG["PMP-200"]
    payload = encode_readings([(time.time(), {s.name: s.nominal for s in pm.sensors})] * batch)
    dev, secret = next(iter(creds.items()))
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{dev}-baseline",
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(dev, secret)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    done = threading.Event()
    acked = [0]
    n_base = min(msgs, 20_000) or 1000

    def on_publish(cl, u, mid, rc, props):
        acked[0] += 1
        if acked[0] >= n_base:
            done.set()
    c.on_publish = on_publish
    c.connect(settings.mqtt_host, settings.mqtt_port)
    c.loop_start()
    time.sleep(0.3)
    topic = f"{settings.mqtt_topic_prefix}/devices/{dev}/telemetry"
    tb = time.perf_counter()
    for _ in range(n_base):
        c.publish(topic, payload, qos=1)
    done.wait(120)
    elb = time.perf_counter() - tb
    c.loop_stop()
    c.disconnect()
    base_msgs = acked[0] / elb
    return {"devices": n_devices, "batch": batch, "wall_s": round(el, 2),
            "readings": readings, "messages": msgs,
            "readings_per_s": round(readings / el), "messages_per_s": round(msgs / el),
            "sim_time_reached": out["sim_time"],
            "baseline_single_paho_messages_per_s": round(base_msgs),
            "ratio_messages_to_baseline": round((msgs / el) / base_msgs, 3)}


def bench_realtime(settings, n_devices: int, seconds: float, batch: int) -> dict:
    """``n_devices`` at 1 Hz in real time (acceleration 1): does one process keep up?"""
    from simulator.register import register_fleet
    from simulator.runner import LiveRunner, RunOptions

    start = datetime.now(timezone.utc).replace(microsecond=0)
    fleet = Fleet(_spec(n_devices, start, "rt"))
    creds = register_fleet(settings, fleet)
    # the fleet starts at registration time: catching up that gap is part of the run
    opts = RunOptions(acceleration=1.0, rate_hz=1.0, batch=batch, qos=1, duration_s=seconds)
    out = LiveRunner(settings, fleet, opts, credentials=creds).run()
    loop_s = seconds
    return {"devices": n_devices, "rate_hz": 1.0, "batch": batch, "seconds": seconds,
            "readings": out["readings"], "messages": out["messages"],
            "simulated_s": round(out["readings"] / n_devices, 1),
            "lag_behind_schedule_s_end": out["lag_s"], "max_lag_s": out["max_lag_s"],
            "idle_fraction": round(out["idle_s"] / loop_s, 3),
            "sustained": out["lag_s"] < 5.0}


def main(argv=None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=None, help="physics fleet (default 10000)")
    p.add_argument("--skip-db", action="store_true", help="physics only (no services needed)")
    args = p.parse_args(argv)
    setup_logging("WARNING")
    q = args.quick
    n_phys = args.devices or 10_000
    figures = {"physics": bench_physics(n_phys, 60 if q else 300)}
    if not args.skip_db:
        from ops.world import World

        with World() as w:
            figures["backfill"] = bench_backfill(w.settings, 200 if q else 1000,
                                                 24.0 if q else 72.0, 60.0)
            figures["live"] = bench_live(w.settings, 500 if q else 2000, 15.0 if q else 40.0, 10)
            figures["realtime"] = bench_realtime(w.settings, 2000 if q else n_phys,
                                                 15.0 if q else 40.0, 10)
    ph = figures["physics"]
    summary = (f"simulator: physics {ph['readings_per_s']:,} readings/s "
               f"({ph['ratio_to_baseline']}x sine+noise), {ph['devices']} devices at 1 Hz with "
               f"{ph['realtime_headroom_x']}x real-time head-room")
    if "backfill" in figures:
        bf, lv = figures["backfill"], figures["live"]
        summary += (f"; backfill {bf['rows_per_s']:,} rows/s ({bf['ratio_to_baseline']}x constant "
                    f"COPY); live {lv['readings_per_s']:,} readings/s = {lv['messages_per_s']:,} "
                    f"msg/s ({lv['ratio_messages_to_baseline']}x one paho client)")
        rt = figures["realtime"]
        summary += (f"; real time {rt['devices']} devices at 1 Hz: lag {rt['lag_behind_schedule_s_end']} s, "
                    f"idle {rt['idle_fraction']:.0%}")
    write(args.json, figures, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
