"""Ingest benchmark: publisher processes drive a device fleet's stream through Mosquitto into
``prognos ingest`` and TimescaleDB; in the same run two subscribers that only count receive
the same stream: stock paho (the bare subscriber: what a Python MQTT client receives at all)
and paho with ingest's own read path (``ingest.mqtt_client.BufferedReadClient``).

    python -m benchmarks.ingest [--quick] --json results/ingest.json

For each shape (one reading of 8 sensors per message; batches of 10 readings per message),
from a fleet of 10,000 devices (each its own MQTT connection, QoS 1):

1. capacity: the publishers send a fixed number of messages while the receiver is away, so
   the broker queues them for its persistent session (QoS 1); then the receiver connects and
   drains them: first the two counting subscribers (rate = messages / (last received -
   connect)), then ingest (rate = messages / (last commit - worker start)). Publishers and
   receiver do not compete for the 2 cores, so the ratio compares the receivers themselves;
2. latency: the publishers pace the fleet at ``--paced-rate`` messages/s (default: half the
   drain rate ingest just reached for the shape), a steady stream with the devices out of
   phase, with each message's newest reading stamped
   at its publish time; p50/p99 of commit time (``ingest_batches.committed_at``) minus that
   stamp, per device and batch.

Then every published reading is counted in the table: ``lost`` and ``duplicates_stored``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.common import parser, write

ROOT = Path(__file__).resolve().parent.parent
PROBE = "probe"
SENSORS = ["vibration_rms", "bearing_temp", "motor_current", "discharge_pressure", "flow_rate",
           "speed", "oil_temp", "power"]


# -- child roles ----------------------------------------------------------------------------
def _role_publisher(a) -> int:
    """Publish for devices [lo, hi): ``messages`` per device (blast) or paced for ``seconds``."""
    from prognos.config import Settings
    from ops.devices import credentials
    from simulator.publisher import FleetPublisher

    settings = Settings()
    creds = credentials(settings)
    ids = sorted(d for d in creds if d != PROBE)[a.lo:a.hi]
    pub = FleetPublisher(settings, {d: creds[d] for d in ids}, qos=1, batch=a.batch,
                         client_suffix=f"-p{a.lo}", max_pending=50_000, connect_timeout=300)
    pub.start()
    rng = np.random.default_rng(a.lo)
    base = rng.uniform(0.5, 1.5, size=(len(ids), 8)).round(3)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()                                   # go
    t_start = time.time()
    sent = 0
    if a.mode == "blast":
        for k in range(a.messages):
            for j, d in enumerate(ids):
                t_last = a.t0 + (k + 1) * a.batch
                vals = dict(zip(SENSORS, (base[j] * (1 + 0.01 * (k % 7))).tolist()))
                pub.publish_readings(d, [(t_last - a.batch + 1 + r, vals) for r in range(a.batch)])
                sent += 1
    else:
        # a steady stream, as from a fleet whose devices report out of phase: the devices take
        # turns, one message every 1/rate s (sent in 2 ms slices), each device once per round
        total = max(1, int(a.seconds * a.rate))
        began = time.monotonic()
        while sent < total:
            due = min(total, int((time.monotonic() - began) * a.rate) + 1)
            while sent < due:
                j = sent % len(ids)
                now = round(time.time(), 3)
                vals = dict(zip(SENSORS, base[j].tolist()))
                pub.publish_readings(ids[j], [(now - (a.batch - 1 - r) * 0.05, vals) for r in range(a.batch)])
                sent += 1
            time.sleep(0.002)
    ok = pub.flush(600)
    t_end = time.time()
    stats = pub.stats()
    pub.stop()
    print(json.dumps({"sent": sent, "t_start": t_start, "t_end": t_end, "flushed": ok, **stats}),
          flush=True)
    return 0


def _role_bare(a) -> int:
    """Count ``expect`` messages on the telemetry topics, nothing else: QoS 1 and a persistent
    session like ingest. Subscribes, disconnects, waits for "go" while the stream is queued
    for it, reconnects and counts; finally deletes its session."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from prognos.config import Settings

    s = Settings()
    state = {"n": 0, "last": 0.0}
    subscribed = []

    def client() -> mqtt.Client:
        if a.client == "fast":                 # ingest's own read path, counting only
            from ingest.mqtt_client import BufferedReadClient
            c = BufferedReadClient(CallbackAPIVersion.VERSION2, client_id="bench-fast",
                                   protocol=mqtt.MQTTv5)
            c.on_deliveries = on_deliveries
        else:                                  # stock paho
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
        c.username_pw_set(s.mqtt_ingest_user, s.mqtt_ingest_password)
        c.on_connect = lambda cl, *x: cl.subscribe(f"{s.mqtt_topic_prefix}/devices/+/telemetry", qos=1)
        c.on_subscribe = lambda *x: subscribed.append(1)
        return c

    def on_message(cl, u, m):
        state["n"] += 1
        state["last"] = time.time()

    def on_deliveries(ds):
        state["n"] += len(ds)
        state["last"] = time.time()

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    c = client()
    c.connect(s.mqtt_host, s.mqtt_port, keepalive=60, clean_start=True, properties=props)
    c.loop_start()
    while not subscribed:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()                                   # the stream is queued: go
    c = client()
    c.on_message = on_message
    t_connect = time.time()
    c.connect(s.mqtt_host, s.mqtt_port, keepalive=60, clean_start=False, properties=props)
    c.loop_start()
    idle_since, seen = time.time(), 0
    while state["n"] < a.expect and time.time() - idle_since < 20:
        time.sleep(0.02)
        if state["n"] != seen:
            seen, idle_since = state["n"], time.time()
    c.disconnect()
    c.loop_stop()
    gone = Properties(PacketTypes.CONNECT)
    gone.SessionExpiryInterval = 0
    c = client()
    c.connect(s.mqtt_host, s.mqtt_port, clean_start=True, properties=gone)   # drop the session
    c.disconnect()
    print(json.dumps({"received": state["n"], "t_connect": t_connect, "last": state["last"]}), flush=True)
    return 0


# -- orchestration --------------------------------------------------------------------------
def _setup_fleet(settings, n: int) -> None:
    from ops.devices import provision

    with psycopg.connect(settings.dsn, autocommit=True) as db:
        db.execute("INSERT INTO product_models VALUES ('BENCH', 'Bench pump', 'pump') ON CONFLICT DO NOTHING")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO sensors VALUES ('BENCH', %s, %s, 'u', -1e6, 1e6)",
                            list(enumerate(SENSORS)))
            cur.execute("INSERT INTO customers VALUES ('C-B', 'Bench') ON CONFLICT DO NOTHING")
            cur.execute("INSERT INTO sites (site_id, customer_id, name) VALUES ('S-B', 'C-B', 'Bench')")
            with cur.copy("COPY assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                          "FROM STDIN") as cp:
                for i in range(n):
                    cp.write_row((f"A-{i:05d}", f"SN-{i:05d}", "BENCH", "C-B", "S-B", date(2024, 1, 1)))
            cur.execute("INSERT INTO assets (asset_id, serial, model_id, customer_id, site_id, install_date) "
                        "VALUES ('A-probe', 'SN-probe', 'BENCH', 'C-B', 'S-B', '2024-01-01')")
    provision(settings, [(f"dev-{i:05d}", f"A-{i:05d}") for i in range(n)] + [(PROBE, "A-probe")])


def _wait_ingest_subscribed(settings, db, timeout: float = 120) -> None:
    """Publish probe readings until one is stored: ingest is connected and subscribed."""
    from ops.devices import credentials
    from simulator.publisher import FleetPublisher

    with FleetPublisher(settings, {PROBE: credentials(settings)[PROBE]}, client_suffix="-probe") as pub:
        start = time.time()
        deadline = start + timeout
        while not db.execute("SELECT 1 FROM telemetry WHERE device_id = %s AND time > to_timestamp(%s) "
                             "LIMIT 1", (PROBE, start - 1.5)).fetchone():
            if time.time() > deadline:
                raise RuntimeError("ingest did not subscribe")
            pub.publish_readings(PROBE, [(time.time() - 1, {"speed": 1.0})])
            time.sleep(0.2)


def _spawn(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.ingest", "--json", "/dev/null", *args],
                            env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def _readline_json(proc, timeout: float = 600) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"child {proc.args} exited with {proc.wait()}")
    return json.loads(line)


def _publish(env, devices: int, procs: int, **kw) -> list[dict]:
    """Run ``procs`` publisher processes over the fleet; returns their reports."""
    step = -(-devices // procs)
    args = []
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    children = [_spawn(env, "--role", "publisher", "--lo", str(i * step),
                       "--hi", str(min(devices, (i + 1) * step)), *args) for i in range(procs)]
    for c in children:
        _readline_json(c)                                  # connected
    for c in children:
        c.stdin.write("go\n")
        c.stdin.flush()
    reports = [_readline_json(c) for c in children]
    for c in children:
        c.wait(60)
    return reports


def _drain_reference(env, a, client: str, n_msgs: int, per_device: int, batch: int, t0: float):
    """Queue the stream for a counting-only subscriber (``client``: stock paho or ingest's read
    path), let it drain, return its report and the publishers'."""
    bare = _spawn(env, "--role", "bare", "--client", client, "--expect", str(n_msgs))
    _readline_json(bare)
    reps = _publish(env, a.devices, a.publishers, mode="blast", messages=per_device, batch=batch, t0=t0)
    bare.stdin.write("go\n")
    bare.stdin.flush()
    res = _readline_json(bare)
    bare.wait(30)
    return res, reps


def _rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, the largest one."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(x) for x in (task / "children").read_text().split()]
    except OSError:
        pass
    best = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return round(best, 1)


def _stored(db) -> tuple[int, int]:
    return db.execute("SELECT count(*), count(DISTINCT (device_id, time)) FROM telemetry "
                      "WHERE device_id <> %s", (PROBE,)).fetchone()


def run(a) -> dict:
    from ops.world import World

    shapes = [("single", 1), ("batched", 10)]
    blast_msgs = {"single": a.messages, "batched": max(1, a.messages // 3)}
    if a.workers != 1:
        print("note: with --workers > 1 the drain runs on $share subscriptions", file=sys.stderr)
    out: dict = {"devices": a.devices, "sensors_per_reading": len(SENSORS), "workers": a.workers,
                 "publisher_processes": a.publishers, "qos": 1, "shapes": {}}
    with World() as w:
        env = dict(w.env(), PYTHONPATH=str(ROOT), PROGNOS_LOG_LEVEL="WARNING")
        t = time.time()
        _setup_fleet(w.settings, a.devices)
        out["setup_s"] = round(time.time() - t, 1)
        db = psycopg.connect(w.settings.dsn, autocommit=True)
        t0 = time.time() - 20 * 86400                      # well inside the retention

        def start_ingest() -> subprocess.Popen:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ingest.cli", "--workers", str(a.workers),
                 "--batch-size", str(a.batch_size), "--flush-ms", str(a.flush_ms),
                 "--rollup-every-s", "3600"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL)
            _wait_ingest_subscribed(w.settings, db)
            return proc

        for name, batch in shapes:
            n_msgs = blast_msgs[name] * a.devices
            shape = out["shapes"][name] = {"readings_per_message": batch, "messages": n_msgs}
            # 1. the bare subscribers drain the stream queued for them: stock paho, and
            #    ingest's own read path (BufferedReadClient), both counting only
            for client, key in (("stock", "bare_subscriber_msgs_per_s"), ("fast", "fast_client_msgs_per_s")):
                res, reps = _drain_reference(env, a, client, n_msgs, blast_msgs[name], batch, t0)
                shape[key] = round(res["received"] / max(1e-9, res["last"] - res["t_connect"]))
                shape[key.replace("msgs_per_s", "received")] = res["received"]
                t0 += 86400
            shape["publish_msgs_per_s"] = round(sum(r["sent"] for r in reps) / (
                max(r["t_end"] for r in reps) - min(r["t_start"] for r in reps)))
            # 2. ingest drains the same stream queued for its persistent session
            t0 += 86400
            ing = start_ingest()
            ing.terminate()
            ing.wait(60)
            before, _ = _stored(db)
            max_batch = db.execute("SELECT coalesce(max(batch_id), 0) FROM ingest_batches").fetchone()[0]
            _publish(env, a.devices, a.publishers, mode="blast", messages=blast_msgs[name],
                     batch=batch, t0=t0)
            ing = subprocess.Popen(
                [sys.executable, "-m", "ingest.cli", "--workers", str(a.workers),
                 "--batch-size", str(a.batch_size), "--flush-ms", str(a.flush_ms),
                 "--rollup-every-s", "3600"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL)
            want = before + n_msgs * batch
            deadline = time.time() + 900
            while _stored(db)[0] < want and time.time() < deadline:
                time.sleep(0.1)
            t_first, t_last = db.execute(
                "SELECT extract(epoch FROM (SELECT max(started_at) FROM ingest_stats))::float8, "
                "extract(epoch FROM max(committed_at))::float8 FROM ingest_batches WHERE batch_id > %s",
                (max_batch,)).fetchone()
            rate = n_msgs / max(1e-9, t_last - t_first)
            # 3. latency at a paced live load: half the capacity just measured (or as asked)
            stored_now, _ = _stored(db)
            max_batch = db.execute("SELECT coalesce(max(batch_id), 0) FROM ingest_batches").fetchone()[0]
            paced_rate = a.paced_rate if a.paced_rate is not None else rate / 2
            reps_p = _publish(env, a.devices, a.publishers, mode="paced", rate=paced_rate / a.publishers,
                              seconds=a.paced_seconds, batch=batch, t0=t0)
            paced_msgs = sum(r["sent"] for r in reps_p)
            want_p = stored_now + paced_msgs * batch
            deadline = time.time() + 300
            while _stored(db)[0] < want_p and time.time() < deadline:
                time.sleep(0.25)
            lat = [r[0] for r in db.execute(
                "SELECT extract(epoch FROM b.committed_at - max(u.t))::float8 FROM ingest_batches b, "
                "unnest(b.device_ids, b.times) AS u(d, t) WHERE b.batch_id > %s AND u.d <> %s "
                "GROUP BY b.batch_id, u.d", (max_batch, PROBE))]
            rss = _rss_mb(ing.pid)
            ing.terminate()
            ing.wait(60)
            stored_all, distinct_all = _stored(db)
            published = (n_msgs + paced_msgs) * batch
            shape.update({
                "msgs_per_s": round(rate), "values_per_s": round(rate * batch * len(SENSORS)),
                "readings_per_s": round(rate * batch),
                "ratio_to_bare": round(rate / shape["bare_subscriber_msgs_per_s"], 3),
                "ratio_to_fast_client": round(rate / shape["fast_client_msgs_per_s"], 3),
                "p50_latency_s": round(float(np.percentile(lat, 50)), 3) if lat else None,
                "p99_latency_s": round(float(np.percentile(lat, 99)), 3) if lat else None,
                "paced_offered_msgs_per_s": round(paced_rate), "paced_messages": paced_msgs,
                "paced_sent_msgs_per_s": round(paced_msgs / max(1e-9, max(r["t_end"] for r in reps_p)
                                                                 - min(r["t_start"] for r in reps_p))),
                "published_readings": published, "stored": stored_all - before,
                "lost": published - (stored_all - before),
                "duplicates_stored": stored_all - distinct_all,
                "peak_rss_mb": rss})
            print(f"{name}: {shape}", file=sys.stderr)
            t0 += 86400
        stats = db.execute("SELECT sum(received), sum(duplicates), sum(dead_lettered) FROM ingest_stats").fetchone()
        out["ingest_stats"] = {"received": stats[0], "duplicates": stats[1], "dead_lettered": stats[2]}
        db.close()
    s1, s2 = out["shapes"]["single"], out["shapes"]["batched"]
    out.update({k: s1[k] for k in ("msgs_per_s", "values_per_s", "p50_latency_s", "p99_latency_s",
                                   "bare_subscriber_msgs_per_s", "ratio_to_bare",
                                   "fast_client_msgs_per_s", "ratio_to_fast_client")})
    out["batched_values_per_s"] = s2["values_per_s"]
    out["published"] = s1["published_readings"] + s2["published_readings"]
    out["stored"] = s1["stored"] + s2["stored"]
    out["lost"] = s1["lost"] + s2["lost"]
    out["duplicates_stored"] = s1["duplicates_stored"] + s2["duplicates_stored"]
    out["peak_rss_mb"] = max(s1["peak_rss_mb"], s2["peak_rss_mb"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--messages", type=int, default=None,
                   help="messages per device in the single-reading capacity run (default 6, quick 3)")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--flush-ms", type=float, default=250.0)
    p.add_argument("--paced-rate", type=float, default=None,
                   help="offered messages/s in the latency run (default: half the drain rate "
                        "measured for that shape)")
    p.add_argument("--paced-seconds", type=float, default=None)
    # child roles
    p.add_argument("--role", choices=["publisher", "bare"], help=argparse_suppress())
    p.add_argument("--lo", type=int, default=0, help=argparse_suppress())
    p.add_argument("--hi", type=int, default=0, help=argparse_suppress())
    p.add_argument("--mode", default="blast", help=argparse_suppress())
    p.add_argument("--batch", type=int, default=1, help=argparse_suppress())
    p.add_argument("--t0", type=float, default=0.0, help=argparse_suppress())
    p.add_argument("--rate", type=float, default=1000.0, help=argparse_suppress())
    p.add_argument("--seconds", type=float, default=5.0, help=argparse_suppress())
    p.add_argument("--expect", type=int, default=0, help=argparse_suppress())
    p.add_argument("--client", choices=["stock", "fast"], default="stock", help=argparse_suppress())
    a = p.parse_args(argv)
    if a.role == "publisher":
        return _role_publisher(a)
    if a.role == "bare":
        return _role_bare(a)
    if a.messages is None:
        a.messages = 3 if a.quick else 6
    if a.paced_seconds is None:
        a.paced_seconds = 5.0 if a.quick else 15.0
    figures = run(a)
    write(a.json, figures,
          f"ingest: {figures['msgs_per_s']} msg/s = {figures['ratio_to_bare']}x bare "
          f"({figures['bare_subscriber_msgs_per_s']} msg/s), batched {figures['batched_values_per_s']} values/s, "
          f"p50 {figures['p50_latency_s']} s, p99 {figures['p99_latency_s']} s, lost {figures['lost']}, "
          f"duplicates {figures['duplicates_stored']}, peak RSS {figures['peak_rss_mb']} MB")
    return 0


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
