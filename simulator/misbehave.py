"""Misbehaving devices, on request: what ingest must survive without losing good data.

Kinds (:data:`KINDS`):

* ``malformed``: payloads that break the contract (not JSON, wrong version, missing or badly
  formatted time, unknown sensor, strings for numbers, too many readings, oversize, ...);
* ``duplicate``: a device re-sends a message it already sent (QoS 1 redelivery, app retries);
* ``clock_skew``: readings from a wrong clock (too far in the future, older than retention;
  and a small, acceptable skew);
* ``burst``: store-and-forward: a device holds its readings and then sends them all at once;
* ``reconnect_storm``: devices drop their connections abruptly and reconnect (Last Will
  ``offline`` each time);
* ``wrong_credentials``: connection attempts with a wrong secret and an unknown device id.

:func:`malformed_payloads` is usable on its own (ingest's tests feed it to the parser):

>>> kinds = [reason for reason, _ in malformed_payloads("2026-01-01T00:00:00.000Z", "vibration_rms")]
>>> "not_json" in kinds and "oversize" in kinds
True
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson

from prognos.logs import event
from schemas.telemetry import encode_readings
from simulator.ground_truth import rfc3339

log = logging.getLogger("prognos.simulator.misbehave")

KINDS = ("malformed", "duplicate", "clock_skew", "burst", "reconnect_storm", "wrong_credentials")


def malformed_payloads(t: str, sensor: str) -> list[tuple[str, bytes]]:
    """``(reason, payload)`` pairs that violate telemetry contract v1 in one way each."""
    good = {"v": 1, "t": t, "values": {sensor: 1.0}}

    def j(obj) -> bytes:
        return orjson.dumps(obj)

    return [
        ("not_json", b'{"v": 1, "t": '),
        ("not_utf8", b'\xff\xfe{"v":1}'),
        ("not_object", j("a reading")),
        ("list_of_v1_readings", j([good])),                # a list is ThingsBoard's shape: ts
        ("wrong_version", j({**good, "v": 2})),
        ("missing_time", j({"v": 1, "values": {sensor: 1.0}})),
        ("bad_time_format", j({**good, "t": "25/11/2026 10:00"})),
        ("time_without_offset", j({**good, "t": t[:19]})),  # local time: ambiguous
        ("epoch_microseconds", j({**good, "t": 1_795_600_800_000_000})),
        ("unknown_sensor", j({**good, "values": {"flux_capacitor": 1.21}})),
        ("string_value", j({**good, "values": {sensor: "2.3"}})),
        ("non_finite", b'{"v": 1, "t": "' + t.encode() + b'", "values": {"' + sensor.encode()
         + b'": NaN}}'),
        ("empty_batch", j({"v": 1, "readings": []})),
        ("too_many_readings", j({"v": 1, "readings": [{"t": t, "values": {sensor: 1.0}}] * 501})),
        ("extra_field", j({**good, "firmware": "1.2.3"})),
        ("oversize", j({**good, "pad": "x" * (257 * 1024)})),
    ]


class Misbehaver:
    """Drives misbehaviour for a few devices of a running :class:`FleetPublisher`.

    ``devices``: the misbehaving device ids (their genuine readings keep flowing too).
    """

    def __init__(self, settings, publisher, devices: list[str], kinds, sensor_of=None,
                 every_s: float = 5.0):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown misbehaviour {unknown}; kinds: {list(KINDS)}")
        if not devices:
            raise ValueError("no devices to misbehave with")
        self.settings = settings
        self.pub = publisher
        self.devices = list(devices)
        self.kinds = list(kinds)
        self.sensor_of = sensor_of or (lambda d: "load_pct")
        self.every_s = every_s
        self.counts: Counter = Counter()
        self._last_payload: dict[str, bytes] = {}
        self._held: dict[str, list] = {d: [] for d in self.devices}
        self._next = 0.0
        self._k = 0

    # readings of burst devices are held back here instead of being published
    def hold(self, device_id: str, readings: list) -> bool:
        if "burst" not in self.kinds or device_id not in self._held:
            return False
        self._held[device_id].extend(readings)
        return True

    def remember(self, device_id: str, payload: bytes) -> None:
        self._last_payload[device_id] = payload

    def tick(self, sim_now: datetime) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every_s
        self._k += 1
        topic_of = (lambda d: f"{self.settings.mqtt_topic_prefix}/devices/{d}/telemetry")
        t = rfc3339(sim_now)
        for d in self.devices:
            if "malformed" in self.kinds:
                for reason, payload in malformed_payloads(t, self.sensor_of(d)):
                    self.pub.publish_raw(d, topic_of(d), payload)
                    self.counts[f"malformed:{reason}"] += 1
            if "duplicate" in self.kinds and d in self._last_payload:
                self.pub.publish_raw(d, topic_of(d), self._last_payload[d])
                self.counts["duplicate"] += 1
            if "clock_skew" in self.kinds:
                s = self.sensor_of(d)
                wall = datetime.now(timezone.utc)
                retention = timedelta(days=self.settings.retention_days + 1)
                for label, tt in (("future_10min", wall + timedelta(minutes=10)),
                                  ("older_than_retention", wall - retention),
                                  ("ahead_2min_ok", min(wall, sim_now + timedelta(minutes=2)))):
                    payload = orjson.dumps({"v": 1, "t": rfc3339(tt), "values": {s: 1.0}})
                    self.pub.publish_raw(d, topic_of(d), payload)
                    self.counts[f"clock_skew:{label}"] += 1
            if "burst" in self.kinds and self._held.get(d):
                held, self._held[d] = self._held[d], []
                for c in range(0, len(held), self.pub.batch):
                    payload = encode_readings(held[c:c + self.pub.batch])
                    self.pub.publish_raw(d, topic_of(d), payload)
                    self.remember(d, payload)
                self.counts["burst_readings"] += len(held)
            if "reconnect_storm" in self.kinds:
                self.pub.drop_connection(d)
                self.counts["reconnect_storm"] += 1
        if "wrong_credentials" in self.kinds:
            self._wrong_credentials()

    def _wrong_credentials(self) -> None:
        from simulator.publisher import ConnectRefused, FleetPublisher

        for device_id, secret in ((self.devices[0], "not-the-secret"),
                                  (f"ghost-{self._k % 100:02d}", "whatever")):
            bad = FleetPublisher(self.settings, {device_id: secret}, qos=1, connect_timeout=10,
                                 client_suffix="-bad")
            try:
                bad.start()
            except ConnectRefused:
                self.counts["wrong_credentials_refused"] += 1
            except Exception as exc:                     # noqa: BLE001 - closed by the broker
                self.counts["wrong_credentials_dropped"] += 1
                event(log, "wrong_credentials_error", level=logging.DEBUG, error=str(exc))
            else:
                self.counts["wrong_credentials_ACCEPTED"] += 1
                event(log, "wrong_credentials_accepted", level=logging.ERROR, device=device_id)
                bad.stop()

    def flush_held(self) -> None:
        for d, held in self._held.items():
            if held:
                self.pub.publish_readings(d, held)
                self.counts["burst_readings"] += len(held)
                self._held[d] = []
