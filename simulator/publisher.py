"""MQTT fleet publisher: thousands of devices, each its own MQTT 5 connection, from one process.

Every device connects with its own credentials (username = device id), a Last Will ``offline``
on its state topic, and publishes telemetry in the contract v1 format (``schemas.telemetry``).
One asyncio event loop in a background thread carries all connections: a small MQTT 5 client
of our own (CONNECT/CONNACK, PUBLISH QoS 0/1, PUBACK, PINGREQ, DISCONNECT), because one paho
client per device costs a thread or a select() over thousands of sockets per message.

QoS 1 messages stay in flight per connection (bounded by the broker's Receive Maximum) until
the broker's PUBACK; a lost connection is re-established with jittered backoff and the
unacknowledged messages are resent (DUP). The caller is slowed down (``max_pending``) rather
than memory growing without bound, and ``flush()`` waits until everything is acknowledged.

Usage::

    pub = FleetPublisher(settings, {"pump-1": "secret"}, qos=1, batch=10)
    pub.start()
    pub.publish_readings("pump-1", [(time.time(), {"vibration_rms": 2.3})])
    pub.publish_state("pump-1", {"event": "failure", "mode": "bearing_wear"})
    pub.flush(); pub.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence

from prognos.logs import event
from schemas.telemetry import (chunk_readings, encode_readings, encode_state, state_topic,
                               telemetry_topic)

log = logging.getLogger("prognos.publisher")

# MQTT control packet types (high nibble of the first byte)
_CONNACK, _PUBACK, _PINGRESP, _DISCONNECT = 2, 4, 13, 14
_PINGREQ = b"\xc0\x00"
_DISCONNECT_NORMAL = b"\xe0\x00"                # reason 0: the broker drops the Will
_DISCONNECT_WITH_WILL = b"\xe0\x02\x04\x00"     # reason 4: the broker publishes the Will
_MAX_INFLIGHT = 1000

# MQTT 5 property ids by wire type, to skip the properties we do not read
_PROP_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_PROP_U16 = {0x13, 0x21, 0x22, 0x23}
_PROP_U32 = {0x02, 0x11, 0x18, 0x27}
_PROP_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F, 0x09, 0x16}
_PROP_RECEIVE_MAXIMUM = 0x21

CONNACK_REASONS = {0x00: "success", 0x80: "unspecified error", 0x85: "client identifier not valid",
                   0x86: "bad user name or password", 0x87: "not authorized",
                   0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
                   0x95: "packet too large", 0x97: "quota exceeded"}


class ConnectRefused(ConnectionError):
    """The broker refused a device's connection (bad credentials, revoked device, ...)."""

    def __init__(self, device_id: str, reason: int | str):
        self.device_id = device_id
        self.reason = reason
        text = CONNACK_REASONS.get(reason, f"reason 0x{reason:02x}") if isinstance(reason, int) else reason
        super().__init__(f"broker refused device {device_id!r}: {text}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def _connect_packet(client_id: str, username: str, password: str, will_topic: str,
                    will_payload: bytes, keepalive: int) -> bytes:
    flags = 0x80 | 0x40 | 0x02 | 0x04 | (1 << 3)      # user, password, clean start, will QoS 1
    var = b"\x00\x04MQTT\x05" + bytes([flags]) + keepalive.to_bytes(2, "big") + b"\x00"
    payload = (_str(client_id) + b"\x00" + _str(will_topic) + _str(will_payload)
               + _str(username) + _str(password))
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def _read_varint(buf, i: int) -> tuple[int, int] | None:
    """(value, next index) of the variable byte integer at ``buf[i]``; None if incomplete."""
    mult, val = 1, 0
    for k in range(4):
        if i + k >= len(buf):
            return None
        b = buf[i + k]
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, i + k + 1
        mult *= 128
    raise ValueError("malformed variable byte integer")


def _receive_maximum(props: bytes) -> int:
    """The Receive Maximum in a CONNACK's properties (65535 when absent)."""
    i = 0
    while i < len(props):
        pid = props[i]
        i += 1
        if pid == _PROP_RECEIVE_MAXIMUM:
            return int.from_bytes(props[i:i + 2], "big")
        if pid in _PROP_BYTE:
            i += 1
        elif pid in _PROP_U16:
            i += 2
        elif pid in _PROP_U32:
            i += 4
        elif pid in _PROP_STR:
            i += 2 + int.from_bytes(props[i:i + 2], "big")
        elif pid == 0x26:                                    # user property: string pair
            for _ in range(2):
                i += 2 + int.from_bytes(props[i:i + 2], "big")
        elif pid == 0x0B:
            r = _read_varint(props, i)
            i = r[1] if r else len(props)
        else:
            break
    return 65535


class _Device(asyncio.Protocol):
    """One device's MQTT connection (protocol object reused across reconnects)."""

    def __init__(self, pub: FleetPublisher, device_id: str, secret: str):
        self.pub = pub
        self.device_id = device_id
        self.secret = secret
        self.telemetry_topic = _str(telemetry_topic(device_id, pub.prefix))
        self.state_topic = _str(state_topic(device_id, pub.prefix))
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.ready = False
        self.connack: asyncio.Future | None = None
        self.inflight: dict[int, bytes] = {}
        self.backlog: deque[tuple[bytes, bytes, int]] = deque()
        self.out: list[bytes] = []
        self.next_mid = 1
        self.receive_max = _MAX_INFLIGHT
        self.last_tx = 0.0
        self.closing = False
        self.refused: int | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        self.buf.clear()
        will = encode_state({"event": "offline", "t": time.time()})
        transport.write(_connect_packet(self.device_id + self.pub.client_suffix, self.device_id,
                                        self.secret, state_topic(self.device_id, self.pub.prefix),
                                        will, self.pub.keepalive))
        self.last_tx = time.monotonic()

    def data_received(self, data: bytes):
        buf = self.buf
        buf += data
        acked = 0
        while len(buf) >= 2:
            r = _read_varint(buf, 1)
            if r is None:
                break
            length, start = r
            if len(buf) < start + length:
                break
            ptype = buf[0] >> 4
            body = bytes(buf[start:start + length])
            del buf[:start + length]
            if ptype == _PUBACK:
                mid = (body[0] << 8) | body[1]
                if self.inflight.pop(mid, None) is not None:
                    acked += 1
                    if len(body) > 2 and body[2] >= 0x80:
                        self.pub._denied += 1
            elif ptype == _CONNACK:
                self._on_connack(body)
            elif ptype == _DISCONNECT:
                reason = body[0] if body else 0
                event(log, "broker_disconnect", level=logging.WARNING, device=self.device_id,
                      reason=reason)
        if acked:
            self.pub._completed(acked)
            self._pump()
            self.pub._flush_out(self)

    def connection_lost(self, exc):
        self.transport = None
        self.ready = False
        if self.connack is not None and not self.connack.done():
            self.connack.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closing and not self.pub._stopping:
            self.pub._schedule_reconnect(self)

    # -- MQTT ---------------------------------------------------------------------------
    def _on_connack(self, body: bytes):
        reason = body[1] if len(body) > 1 else 0
        if reason == 0:
            r = _read_varint(body, 2)
            if r is not None:
                plen, pstart = r
                self.receive_max = max(1, min(_MAX_INFLIGHT,
                                              _receive_maximum(body[pstart:pstart + plen])))
            self.ready = True
            self.refused = None
            # resend what the broker has not acknowledged, then the backlog
            for mid, pkt in list(self.inflight.items()):
                self.out.append(bytes([pkt[0] | 0x08]) + pkt[1:])
            self._pump()
            self.pub._flush_out(self)
        else:
            self.refused = reason
        if self.connack is not None and not self.connack.done():
            self.connack.set_result(reason)

    def enqueue(self, topic: bytes, payload: bytes, qos: int):
        if self.ready and not self.backlog and (qos == 0 or len(self.inflight) < self.receive_max):
            self._send(topic, payload, qos)
        else:
            self.backlog.append((topic, payload, qos))

    def _pump(self):
        bl = self.backlog
        while bl and self.ready and len(self.inflight) < self.receive_max:
            self._send(*bl.popleft())

    def _send(self, topic: bytes, payload: bytes, qos: int):
        if qos == 0:
            body_len = len(topic) + 1 + len(payload)
            self.out.append(b"\x30" + _varint(body_len) + topic + b"\x00" + payload)
            self.pub._completed(1)
            return
        mid = self.next_mid
        while mid in self.inflight:
            mid = mid % 65535 + 1
        self.next_mid = mid % 65535 + 1
        body_len = len(topic) + 3 + len(payload)
        pkt = b"\x32" + _varint(body_len) + topic + mid.to_bytes(2, "big") + b"\x00" + payload
        self.inflight[mid] = pkt
        self.out.append(pkt)


class FleetPublisher:
    """Publish telemetry and state events for many devices, each with its own connection.

    ``credentials``: device id -> MQTT secret. ``batch``: readings per telemetry message
    (1 = the single-reading form). ``max_pending``: messages submitted but not yet
    acknowledged before ``publish_*`` blocks the caller. Thread-safe for one or more callers.
    """

    def __init__(self, settings, credentials: Mapping[str, str], qos: int = 1, batch: int = 1,
                 *, max_pending: int = 100_000, keepalive: int = 60,
                 connect_concurrency: int = 200, client_suffix: str = "",
                 connect_timeout: float = 120.0):
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        if not credentials:
            raise ValueError("no device credentials given")
        self.settings = settings
        self.host, self.port = settings.mqtt_host, settings.mqtt_port
        self.prefix = settings.mqtt_topic_prefix
        self.qos = qos
        self.batch = int(batch)
        self.max_pending = int(max_pending)
        self.keepalive = int(keepalive)
        self.connect_concurrency = int(connect_concurrency)
        self.client_suffix = client_suffix
        self.connect_timeout = connect_timeout
        self._credentials = dict(credentials)
        self._devices: dict[str, _Device] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inbox: deque = deque()
        self._wake_scheduled = False
        self._cv = threading.Condition()
        self._outstanding = 0
        self._published = 0
        self._acked = 0
        self._denied = 0
        self._reconnects = 0
        self._stopping = False
        self._dirty: set[_Device] = set()
        self._keepalive_fut = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FleetPublisher:
        """Connect every device; raises :class:`ConnectRefused` if the broker refuses one."""
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet-publisher",
                                        daemon=True)
        self._thread.start()
        self._devices = {d: _Device(self, d, s) for d, s in self._credentials.items()}
        fut = asyncio.run_coroutine_threadsafe(self._connect_all(), self._loop)
        try:
            fut.result(timeout=self.connect_timeout + 5)
        except BaseException:
            self.stop(timeout=5)
            raise
        self._keepalive_fut = asyncio.run_coroutine_threadsafe(self._keepalive_task(), self._loop)
        event(log, "publisher_started", devices=len(self._devices), qos=self.qos, batch=self.batch)
        return self

    def __enter__(self) -> FleetPublisher:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0, *, with_will: bool = False) -> None:
        """Disconnect every device (normally: no Will; ``with_will``: the broker publishes
        each device's ``offline`` Will) and stop the loop. Unflushed messages are dropped;
        call :meth:`flush` first to wait for them."""
        if self._loop is None:
            return
        self._stopping = True
        loop = self._loop

        async def _close():
            pkt = _DISCONNECT_WITH_WILL if with_will else _DISCONNECT_NORMAL
            for dev in self._devices.values():
                dev.closing = True
                if dev.transport is not None:
                    dev.transport.write(pkt)
                    dev.transport.close()
            await asyncio.sleep(0.05)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        try:
            asyncio.run_coroutine_threadsafe(_close(), loop).result(timeout)
        except Exception:                                     # noqa: BLE001 - best effort
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        loop.close()
        self._loop = None
        self._thread = None
        with self._cv:
            self._cv.notify_all()

    async def _connect_all(self):
        sem = asyncio.Semaphore(self.connect_concurrency)

        async def one(dev: _Device):
            async with sem:
                await self._connect(dev)

        await asyncio.wait_for(asyncio.gather(*(one(d) for d in self._devices.values())),
                               self.connect_timeout)

    async def _connect(self, dev: _Device):
        dev.connack = self._loop.create_future()
        await self._loop.create_connection(lambda: dev, self.host, self.port)
        reason = await asyncio.wait_for(dev.connack, 30)
        if reason != 0:
            dev.closing = True
            if dev.transport is not None:
                dev.transport.close()
            raise ConnectRefused(dev.device_id, reason)

    def _schedule_reconnect(self, dev: _Device, attempt: int = 0):
        delay = min(10.0, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.0)

        async def again():
            await asyncio.sleep(delay)
            if self._stopping:
                return
            dev.closing = False
            try:
                dev.connack = self._loop.create_future()
                await self._loop.create_connection(lambda: dev, self.host, self.port)
                reason = await asyncio.wait_for(dev.connack, 30)
                if reason != 0:
                    raise ConnectRefused(dev.device_id, reason)
                self._reconnects += 1
                return
            except (OSError, asyncio.TimeoutError, ConnectRefused) as exc:
                dev.closing = True                  # we retry ourselves, not connection_lost
                if dev.transport is not None:
                    dev.transport.close()
                if attempt in (0, 5) or attempt % 20 == 0:
                    event(log, "device_reconnect_failed", level=logging.WARNING,
                          device=dev.device_id, attempt=attempt + 1, error=str(exc))
                self._schedule_reconnect(dev, attempt + 1)

        asyncio.ensure_future(again(), loop=self._loop)

    async def _keepalive_task(self):
        while not self._stopping:
            await asyncio.sleep(max(1.0, self.keepalive / 4))
            now = time.monotonic()
            for dev in self._devices.values():
                if dev.ready and dev.transport is not None and now - dev.last_tx > self.keepalive / 2:
                    dev.transport.write(_PINGREQ)
                    dev.last_tx = now

    # -- publishing ---------------------------------------------------------------------
    def publish_readings(self, device_id: str, readings: Sequence) -> int:
        """Publish ``[(t, {sensor: value}), ...]`` (t: datetime, epoch seconds or RFC 3339
        string) in messages of at most ``batch`` readings; returns the number of messages."""
        dev = self._device(device_id)
        n = 0
        for chunk in chunk_readings(readings, self.batch):
            self._submit(dev, dev.telemetry_topic, encode_readings(chunk), self.qos)
            n += 1
        return n

    def publish_state(self, device_id: str, ev: Mapping) -> None:
        """Publish a state event ``{"event": ..., "t": ..., "mode": ..., "code": ..., "detail": ...}``."""
        dev = self._device(device_id)
        self._submit(dev, dev.state_topic, encode_state(ev), 1)

    def publish_raw(self, device_id: str, topic: str, payload: bytes, qos: int | None = None) -> None:
        """Publish arbitrary bytes on any topic over ``device_id``'s connection (tests, tools)."""
        dev = self._device(device_id)
        self._submit(dev, _str(topic), bytes(payload), self.qos if qos is None else qos)

    def _device(self, device_id: str) -> _Device:
        if self._loop is None:
            raise RuntimeError("publisher is not started")
        try:
            return self._devices[device_id]
        except KeyError:
            raise ValueError(f"device {device_id!r} is not in this publisher's credentials") from None

    def _submit(self, dev: _Device, topic: bytes, payload: bytes, qos: int) -> None:
        with self._cv:
            while self._outstanding >= self.max_pending and self._loop is not None:
                self._cv.wait(1.0)
            if self._loop is None:
                raise RuntimeError("publisher stopped")
            self._outstanding += 1
            self._published += 1
        self._inbox.append((dev, topic, payload, qos))
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self):
        self._wake_scheduled = False
        inbox = self._inbox
        dirty = self._dirty
        while inbox:
            dev, topic, payload, qos = inbox.popleft()
            dev.enqueue(topic, payload, qos)
            if dev.out:
                dirty.add(dev)
        for dev in dirty:
            self._flush_out(dev)
        dirty.clear()

    def _flush_out(self, dev: _Device):
        if dev.out:
            if dev.transport is not None:
                dev.transport.write(b"".join(dev.out) if len(dev.out) > 1 else dev.out[0])
                dev.last_tx = time.monotonic()
            dev.out.clear()

    def _completed(self, n: int):
        with self._cv:
            self._outstanding -= n
            self._acked += n
            if self._outstanding < self.max_pending or self._outstanding <= 0:
                self._cv.notify_all()

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until every published message is acknowledged (QoS 1) or written (QoS 0);
        False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._outstanding > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(min(left, 0.5) if left is not None else 0.5)
        return True

    def drop_connection(self, device_id: str) -> None:
        """Abort a device's TCP connection without DISCONNECT (the broker publishes its Will);
        the publisher reconnects it."""
        dev = self._device(device_id)
        self._loop.call_soon_threadsafe(lambda: dev.transport and dev.transport.abort())

    def stats(self) -> dict:
        with self._cv:
            return {"devices": len(self._devices), "published": self._published,
                    "acked": self._acked, "outstanding": self._outstanding,
                    "denied": self._denied, "reconnects": self._reconnects,
                    "connected": sum(1 for d in self._devices.values() if d.ready)}
