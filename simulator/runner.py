"""The live runner: a fleet publishing over MQTT on a simulated clock.

The simulated clock starts where the fleet is (in the past) and advances ``acceleration``
simulated seconds per wall second, but never beyond wall-clock now: once caught up it runs in
real time (ingest refuses readings more than 5 minutes in the future).  Every device samples
at ``rate_hz`` (simulated) and publishes its readings in messages of ``batch`` readings with
its own credentials; ground-truth events become state events (failure, repair_started,
repair_finished, fault) on the device's state topic.

``execute_orders``: open predictive and preventive orders in ``service_orders`` for the
fleet's assets are picked up by a technician who arrives after a response delay (from the
order's SLA tier), performs the maintenance on the fleet and reports repair_started /
repair_finished (ingest completes the order from those).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from prognos.config import Settings
from prognos.logs import event
from simulator.catalog import CATALOG
from simulator.fleet import TIER_RESPONSE_H, Fleet
from simulator.technicians import OBSERVED

log = logging.getLogger("prognos.simulator.runner")

STATE_OF = {"failure": "failure", "repair_start": "repair_started",
            "repair_end": "repair_finished", "sensor_fault": "fault"}
SENSOR_OPEN_CODE = "E_SENSOR_OPEN"


def reported(e: dict) -> bool:
    """Whether the device itself reports a ground-truth event: a gateway notices a sensor
    that stops answering (dropout: open circuit), not one that is stuck or noisy."""
    return e["event"] != "sensor_fault" or e.get("kind") == "dropout"


@dataclass
class RunOptions:
    acceleration: float = 3600.0   # simulated seconds per wall second (until caught up)
    rate_hz: float = 1.0 / 60.0    # readings per device per simulated second
    batch: int = 10                # readings per message
    qos: int = 1
    misbehave: list[str] = field(default_factory=list)
    misbehave_devices: int = 3
    misbehave_every_s: float = 5.0  # wall seconds between rounds of misbehaviour
    execute_orders: bool = False
    order_poll_s: float = 5.0      # wall seconds between polls of service_orders
    duration_s: float | None = None  # wall seconds (None: until stopped)
    until: datetime | None = None  # simulated time to stop at
    ground_truth_path: Path | None = None
    ground_truth_every_s: float = 30.0
    max_readings_per_step: int = 50_000  # per loop turn (keeps stops and polls prompt)

    def __post_init__(self):
        if not self.acceleration >= 1.0:
            raise ValueError("acceleration must be >= 1 (1 = real time)")
        if not self.rate_hz > 0:
            raise ValueError("rate_hz must be > 0")
        if not 1 <= self.batch <= 500:
            raise ValueError("batch must be 1..500 readings per message")


class LiveRunner:
    def __init__(self, settings: Settings, fleet: Fleet, opts: RunOptions,
                 credentials: dict[str, str] | None = None, publisher=None):
        self.settings, self.fleet, self.opts = settings, fleet, opts
        if credentials is None:
            from ops.devices import credentials as load

            credentials = load(settings)
        missing = [d for d in fleet.device_ids() if d not in credentials]
        if missing:
            raise RuntimeError(f"{len(missing)} devices of the fleet have no credentials in "
                               f"{settings.device_credentials} (e.g. {missing[0]}); run "
                               "`prognos simulate register` first")
        self.credentials = {d: credentials[d] for d in fleet.device_ids()}
        self.publisher = publisher
        self._gt_cursor = len(fleet.ground_truth.events)
        self._pending: dict[str, list] = {d: [] for d in fleet.device_ids()}
        # devices send their first message after 1..batch readings, so that their messages
        # spread evenly over time instead of all falling in the same second
        self._first: dict[str, int] = {d: 1 + i % opts.batch
                                       for i, d in enumerate(fleet.device_ids())}
        self._orders_seen: set[int] = set()
        self._visits: list[tuple[float, int, str, str, str]] = []  # (sim t, order, asset, mode, kind)
        self._order_mode: dict[int, str] = {}
        self.stats = {"readings": 0, "messages": 0, "state_events": 0, "orders_executed": 0,
                      "orders_skipped": 0, "lag_s": 0.0, "max_lag_s": 0.0, "idle_s": 0.0}
        self.misbehaver = None
        self._rng = np.random.default_rng([fleet.spec.seed, 7])  # technicians' response delays

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict:
        from simulator.publisher import FleetPublisher

        o = self.opts
        own = self.publisher is None
        if own:
            self.publisher = FleetPublisher(self.settings, self.credentials, qos=o.qos,
                                            batch=o.batch)
            self.publisher.start()
        pub = self.publisher
        if o.misbehave:
            from simulator.misbehave import Misbehaver

            devs = self.fleet.device_ids()[: max(1, o.misbehave_devices)]
            self.misbehaver = Misbehaver(
                self.settings, pub, devs, o.misbehave, every_s=o.misbehave_every_s,
                sensor_of=lambda d: CATALOG[self.fleet.asset_of_device(d).model_id].sensors[0].name)
        dt = 1.0 / o.rate_hz
        n_dev = len(self.fleet.assets)
        max_steps = max(1, o.max_readings_per_step // n_dev)
        wall0, sim0 = time.time(), self.fleet.clock.timestamp()
        last_gt = last_poll = last_log = time.monotonic()
        for d in self.fleet.device_ids():
            pub.publish_state(d, {"event": "online", "t": self.fleet.clock})
        try:
            while True:
                wall = time.time()
                if o.duration_s is not None and wall - wall0 >= o.duration_s:
                    break
                target = min(sim0 + o.acceleration * (wall - wall0), wall)
                if o.until is not None:
                    target = min(target, o.until.timestamp())
                steps = int((target - self.fleet.clock.timestamp()) // dt)
                if steps <= 0:
                    if o.until is not None and self.fleet.clock >= o.until - timedelta(seconds=dt):
                        break
                    pause = min(0.2, max(0.01, dt / o.acceleration))
                    time.sleep(pause)
                    self.stats["idle_s"] += pause
                else:
                    steps = min(steps, max_steps)
                    block = self.fleet.step(None, steps, dt)
                    self._publish_block(block)
                    self._publish_transitions(block)
                    self._publish_device_faults()
                    self._publish_events()
                    # how far the simulation is behind its own schedule (target time)
                    lag = (min(sim0 + o.acceleration * (time.time() - wall0), time.time())
                           - self.fleet.clock.timestamp())
                    self.stats["lag_s"] = round(lag, 3)
                    self.stats["max_lag_s"] = max(self.stats["max_lag_s"], round(lag, 3))
                mono = time.monotonic()
                if o.execute_orders:
                    if mono - last_poll >= o.order_poll_s:
                        last_poll = mono
                        self._poll_orders()
                    self._do_visits()
                if self.misbehaver is not None:
                    self.misbehaver.tick(self.fleet.clock)
                if o.ground_truth_path and mono - last_gt >= o.ground_truth_every_s:
                    last_gt = mono
                    self.fleet.ground_truth.write_jsonl(o.ground_truth_path)
                if mono - last_log >= 10.0:
                    last_log = mono
                    event(log, "simulator_progress", sim_time=self.fleet.clock.isoformat(),
                          behind_s=round(time.time() - self.fleet.clock.timestamp(), 1),
                          **self.stats, **pub.stats())
        except KeyboardInterrupt:
            pass
        finally:
            self._flush_pending()
            if self.misbehaver is not None:
                self.misbehaver.flush_held()
            # a clean shutdown: the devices say so (the Will covers the unclean ones)
            for d in self.fleet.device_ids():
                pub.publish_state(d, {"event": "offline", "t": self.fleet.clock})
            pub.flush(timeout=30)
            if o.ground_truth_path:
                self.fleet.ground_truth.write_jsonl(o.ground_truth_path)
            if own:
                pub.stop()
        out = dict(self.stats, sim_time=self.fleet.clock.isoformat(),
                   wall_s=round(time.time() - wall0, 3), idle_s=round(self.stats["idle_s"], 3))
        if self.misbehaver is not None:
            out["misbehaviour"] = dict(self.misbehaver.counts)
        event(log, "simulator_stopped", **out)
        return out

    # ------------------------------------------------------------------ publishing
    def _publish_block(self, block: dict) -> None:
        batch = self.opts.batch
        pub = self.publisher
        mis = self.misbehaver
        dup = mis is not None and "duplicate" in mis.kinds
        for mid, (times, device_ids, values) in block.items():
            names = CATALOG[mid].sensor_names
            ts = [x + "Z" for x in np.datetime_as_string(times.astype("datetime64[ms]"),
                                                          unit="ms").tolist()]
            vals = values.tolist()  # NaN is written as JSON null (orjson)
            for i, d in enumerate(device_ids):
                pend = self._pending[d]
                pend.extend((ts[j], dict(zip(names, vals[j][i]))) for j in range(len(ts)))
                first = self._first.pop(d, None)
                if first is not None and len(pend) >= first:   # staggered first message
                    k = first + (len(pend) - first) // batch * batch
                elif first is not None or len(pend) < batch:
                    if first is not None:
                        self._first[d] = first
                    continue
                else:
                    k = len(pend) - len(pend) % batch
                out, self._pending[d] = pend[:k], pend[k:]
                if mis is not None and mis.hold(d, out):
                    continue
                if dup and d in mis.devices:
                    from schemas.telemetry import encode_readings, telemetry_topic

                    for c in range(0, len(out), batch):
                        payload = encode_readings(out[c:c + batch])
                        pub.publish_raw(d, telemetry_topic(d, self.settings.mqtt_topic_prefix),
                                        payload)
                        mis.remember(d, payload)
                    self.stats["messages"] += (len(out) + batch - 1) // batch
                else:
                    self.stats["messages"] += pub.publish_readings(d, out)
                self.stats["readings"] += len(out)

    def _publish_transitions(self, block: dict) -> None:
        """start / stop state events when machines start or stop (duty cycle, failures)."""
        for mid, trans in self.fleet.last_transitions.items():
            if not trans:
                continue
            times, device_ids, _ = block[mid]
            stamps = np.datetime_as_string(times.astype("datetime64[ms]"), unit="ms")
            for j, i, running in trans:
                self.publisher.publish_state(device_ids[i], {
                    "event": "start" if running else "stop", "t": str(stamps[j]) + "Z"})
                self.stats["state_events"] += 1

    def _publish_device_faults(self) -> None:
        for f in self.fleet.last_device_faults:
            self.publisher.publish_state(f["device_id"], {"event": "fault", "t": f["t"],
                                                          "code": f["code"], "detail": f["detail"]})
            self.stats["state_events"] += 1

    def _flush_pending(self) -> None:
        for d, pend in self._pending.items():
            if pend:
                self.stats["messages"] += self.publisher.publish_readings(d, pend)
                self.stats["readings"] += len(pend)
                self._pending[d] = []

    def _publish_events(self) -> None:
        evs = self.fleet.ground_truth.events
        new, self._gt_cursor = evs[self._gt_cursor:], len(evs)
        for e in sorted(new, key=lambda e: e["t"]):
            name = STATE_OF.get(e["event"])
            if name is None or not reported(e):
                continue
            order_id = e.get("order_id")
            mode = self._order_mode.get(order_id) if order_id else None
            mode = mode or e.get("mode") or ("preventive" if e.get("kind") == "preventive"
                                             else None)
            msg = {"event": name, "t": e["t"]}
            detail = {}
            if name == "fault":
                msg["code"] = SENSOR_OPEN_CODE
                detail["sensor"] = e["sensor"]
            else:
                msg["mode"] = mode
                if e.get("kind"):
                    detail["kind"] = e["kind"]
                if order_id:
                    detail["order_id"] = order_id
                if name == "repair_finished":      # what the technician records
                    detail.update({k: e[k] for k in (*OBSERVED, "as_found") if k in e})
            if detail:
                msg["detail"] = detail
            # pending readings before the event go first (keeps each device's stream ordered)
            self.publisher.publish_state(e["device_id"], msg)
            self.stats["state_events"] += 1

    # ------------------------------------------------------------------ technicians
    def _poll_orders(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.settings.dsn, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT o.order_id, o.asset_id, o.mode, o.kind, coalesce(o.sla_tier, 'silver') "
                    "FROM service_orders o WHERE o.status IN ('approved', 'scheduled') "
                    "AND o.kind IN ('predictive', 'preventive') AND o.asset_id = ANY(%s) "
                    "ORDER BY o.priority, o.order_id",
                    ([a.asset_id for a in self.fleet.assets],)).fetchall()
        except Exception as exc:                           # noqa: BLE001 - retried next poll
            event(log, "order_poll_failed", level=logging.WARNING, error=str(exc))
            return
        rng = self._rng
        now = self.fleet.clock.timestamp()
        for order_id, asset_id, mode, kind, tier in rows:
            if order_id in self._orders_seen:
                continue
            self._orders_seen.add(order_id)
            self._order_mode[order_id] = mode
            delay_h = TIER_RESPONSE_H.get(tier, 24.0) * float(rng.uniform(0.2, 0.8))
            self._visits.append((now + delay_h * 3600.0, order_id, asset_id, mode, kind))
            event(log, "technician_dispatched", order_id=order_id, asset_id=asset_id, mode=mode,
                  arrives_in_h=round(delay_h, 2))
        self._visits.sort()

    def _do_visits(self) -> None:
        now = self.fleet.clock.timestamp()
        keep = []
        for visit in self._visits:
            at, order_id, asset_id, mode, kind = visit
            if at > now:
                keep.append(visit)
                continue
            try:
                known = mode in self.fleet.groups[self.fleet.asset(asset_id).model_id].modes
                self.fleet.apply_maintenance(
                    asset_id, mode if known else None, at=self.fleet.clock,
                    kind="predictive" if (kind == "predictive" and known) else "preventive",
                    order_id=order_id)
                self.stats["orders_executed"] += 1
            except ValueError as exc:                     # asset down: its repair closes it
                self.stats["orders_skipped"] += 1
                event(log, "order_not_executed", order_id=order_id, asset_id=asset_id,
                      reason=str(exc))
        self._visits = keep
        self._publish_events()


def default_ground_truth_path(settings: Settings) -> Path:
    return settings.state_dir / "simulator" / "ground_truth.jsonl"
