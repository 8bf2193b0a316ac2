"""One ingest worker: MQTT (paho, QoS 1, persistent session, manual acks) -> TimescaleDB.

Threads:

- paho's network loop (:class:`~ingest.mqtt_client.BufferedReadClient`): decodes each read
  chunk's PUBLISH packets in one go and appends ``(message, connection generation, receive
  time)`` for all of them to a :class:`~ingest.buffer.BoundedBuffer` (``on_deliveries``; the
  rare packet paho decodes itself comes through ``on_message``); when the buffer is full the
  loop blocks and the broker keeps the messages (backpressure). No database work happens
  there.
- the collector (the caller of :meth:`IngestWorker.run`): takes what is buffered, closing a
  batch when it reaches ``batch_size`` messages, when ``flush_ms`` has passed since its first
  message, or as soon as the stream pauses; parses and validates every message and hands the
  batch to
- the committer, which commits batches in order, each in one transaction
  (:class:`~ingest.writer.TelemetryWriter`), and only then acks its messages, in arrival order.
  At most two parsed batches wait for it, so parsing and receiving overlap the commit (the
  broker's in-flight window keeps moving) and memory stays bounded. A message received on an earlier connection is not acked (the
  broker redelivers it on the new one; the natural key stores it once).
- housekeeping: rollup refresh and retention, on their own connection and lock.

A database outage holds the batch and its acks and retries with jittered exponential backoff
(``RetryPolicy``); a message that cannot be written even on its own goes to ``dead_letters``.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.buffer import BoundedBuffer
from ingest.catalog import DeviceCatalog
from ingest.mqtt_client import BufferedReadClient
from ingest.copy_binary import to_pg_micros
from ingest.parse import Rejected, parse_state, parse_telemetry, split_topic
from ingest.rollup import apply_retention, refresh_rollups
from ingest.writer import Batch, TelemetryWriter
from prognos.config import Settings
from prognos.logs import event

log = logging.getLogger("prognos.ingest")

#: Errors that mean "the database is unreachable": hold the batch and retry.
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass
class RetryPolicy:
    """Jittered exponential backoff: attempt k waits ``min(cap, initial * 2**k) * jitter()``.
    Tests pin ``jitter`` (e.g. ``lambda: 1.0``)."""

    initial_s: float = 0.2
    cap_s: float = 10.0
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.5, 1.0))

    def delay(self, attempt: int) -> float:
        return min(self.cap_s, self.initial_s * 2 ** attempt) * self.jitter()


@dataclass
class IngestOptions:
    worker_index: int = 0
    workers: int = 1
    batch_size: int = 5000            # messages per transaction, at most
    batch_bytes: int = 16 << 20       # payload bytes per transaction, at most (bounds memory)
    flush_ms: float = 250.0           # oldest message waits at most this long before a flush
    idle_ms: float = 3.0              # flush early when the stream pauses this long
    queue_size: int = 20_000          # messages between the network loop and the writer
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    client_id: str | None = None
    subscribe_state: bool | None = None   # default: worker 0 only (events stay in order)
    rollup_every_s: float = 15.0
    rollup_settle_s: float = 70.0
    retention_every_s: float = 3600.0
    housekeeping: bool | None = None      # default: worker 0 only
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def name(self) -> str:
        return f"ingest-{self.worker_index}"


class IngestWorker:
    def __init__(self, settings: Settings, options: IngestOptions | None = None):
        self.settings = settings
        self.opt = options or IngestOptions()
        self.name = self.opt.name
        self.buffer = BoundedBuffer(self.opt.queue_size)
        self.catalog = DeviceCatalog(settings.dsn)
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection | None = None
        self._writer: TelemetryWriter | None = None
        self.committed_batches = 0
        self._jobs: queue.Queue = queue.Queue(maxsize=2)   # parsed batches waiting for commit
        self._fatal: BaseException | None = None
        self._parse_conn: psycopg.Connection | None = None
        prefix = settings.mqtt_topic_prefix
        shared = self.opt.workers > 1
        telemetry = f"{prefix}/devices/+/telemetry"
        self.topics = [f"$share/ingest/{telemetry}" if shared else telemetry]
        state = self.opt.subscribe_state if self.opt.subscribe_state is not None else self.opt.worker_index == 0
        if state:
            self.topics.append(f"{prefix}/devices/+/state")
        self._prefix = prefix

    # -- MQTT side ---------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        cid = self.opt.client_id or f"prognos-{self.name}"
        c = BufferedReadClient(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5,
                               manual_ack=True)
        c.username_pw_set(self.settings.mqtt_ingest_user, self.settings.mqtt_ingest_password)
        c.reconnect_delay_set(0.2, 5)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message               # what the fast path leaves to paho
        c.on_deliveries = self._on_deliveries
        c.on_subscribe = self._on_subscribe
        return c

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            event(log, "mqtt_connect_refused", level=logging.ERROR, worker=self.name,
                  reason=str(reason_code))
            return
        opts = SubscribeOptions(qos=1)
        client.subscribe([(t, opts) for t in self.topics])
        event(log, "mqtt_connected", worker=self.name, session_present=flags.session_present,
              topics=self.topics)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            event(log, "mqtt_subscribe_refused", level=logging.ERROR, worker=self.name,
                  reasons=failed)
        self._connected.set()                     # subscribed: messages flow from here on
        if not failed:
            event(log, "mqtt_subscribed", worker=self.name, topics=self.topics)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._generation += 1                     # acks for older messages are void now
        self._connected.clear()
        if not self._stop.is_set():
            event(log, "mqtt_disconnected", level=logging.WARNING, worker=self.name,
                  reason=str(reason_code))

    def _on_message(self, client, userdata, msg):
        self.buffer.put((msg, self._generation, time.time()))

    def _on_deliveries(self, deliveries: list) -> None:
        gen, now = self._generation, time.time()
        self.buffer.put_many([(d, gen, now) for d in deliveries])

    def _connect_mqtt(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.opt.session_expiry_s
        props.ReceiveMaximum = 65535
        c = self._client = self._make_client()
        attempt = 0
        while not self._stop.is_set():
            try:
                c.connect(self.settings.mqtt_host, self.settings.mqtt_port,
                          keepalive=self.opt.keepalive_s, clean_start=False, properties=props)
                break
            except OSError as exc:
                delay = self.opt.retry.delay(attempt)
                event(log, "mqtt_connect_retry", level=logging.WARNING, worker=self.name,
                      error=str(exc), delay_s=round(delay, 2))
                self._stop.wait(delay)
                attempt += 1
        c.loop_start()

    # -- database side -----------------------------------------------------------------
    def _db(self) -> TelemetryWriter:
        if self._writer is None:
            attempt = 0
            while True:
                try:
                    self._conn = psycopg.connect(self.settings.dsn, autocommit=True,
                                                 application_name=f"prognos-{self.name}")
                    self.catalog.load(self._conn)
                    self._writer = TelemetryWriter(self._conn, self.name)
                    break
                except _TRANSIENT as exc:
                    self._close_db()
                    if self._stop.is_set() and attempt > 2:
                        raise
                    delay = self.opt.retry.delay(attempt)
                    event(log, "db_connect_retry", level=logging.WARNING, worker=self.name,
                          error=str(exc).strip()[:200], delay_s=round(delay, 2))
                    time.sleep(delay)
                    attempt += 1
        return self._writer

    def _close_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:                                  # noqa: BLE001
                pass
        self._conn = None
        self._writer = None

    def _build(self, items: list, conn: psycopg.Connection) -> Batch:
        b = Batch(received=len(items), oldest_receive=items[0][2] if items else 0.0)
        oldest = time.time() - self.settings.retention_days * 86400.0
        keys: dict = {}
        catalog = self.catalog
        for msg, _gen, received_at in items:
            topic = msg.topic
            payload = msg.payload
            device_id = None
            try:
                device_id, kind = split_topic(topic, self._prefix)
                info = catalog.get(device_id, conn)
                if info is None:
                    raise Rejected("unknown_device", f"no device {device_id!r}")
                if not info.active:
                    raise Rejected("revoked_device", f"device {device_id!r} is revoked")
                if kind == "telemetry":
                    for t, vals, text in parse_telemetry(payload, info, now=received_at, oldest=oldest):
                        micros = to_pg_micros(t.timestamp())
                        k = (device_id, micros)
                        if k in keys:
                            b.duplicates_in_batch += 1
                        else:
                            keys[k] = None
                            b.rows.append((micros, device_id, vals, text))
                else:
                    b.events.append((parse_state(payload, device_id, now=received_at, oldest=oldest,
                                                      modes=info.modes),
                                     info.asset_id))
            except Rejected as exc:
                b.dead.append((topic, device_id, exc.reason, exc.detail, payload))
            except Exception as exc:                            # noqa: BLE001 - never crash
                if isinstance(exc, _TRANSIENT):
                    raise
                b.dead.append((topic, device_id, "internal_error", repr(exc)[:500], payload))
        return b

    def _commit(self, items: list, batch: Batch | None = None) -> None:
        """Commit ``items`` (parsed already as ``batch``, or parsed here); returns once committed
        (retrying while the database is unreachable). A batch that fails for another reason is
        split into single messages and a message that still fails is dead-lettered with reason
        ``write_error``."""
        attempt = 0
        while True:
            writer = self._db()
            try:
                if batch is None:
                    batch = self._build(items, writer.conn)
                writer.write(batch, queue_depth=len(self.buffer))
                return
            except _TRANSIENT as exc:
                self._close_db()
                delay = self.opt.retry.delay(attempt)
                event(log, "db_write_retry", level=logging.WARNING, worker=self.name,
                      error=str(exc).strip()[:200], attempt=attempt + 1, delay_s=round(delay, 2),
                      messages=len(items))
                time.sleep(delay)
                attempt += 1
            except psycopg.Error as exc:
                if self._conn is not None and self._conn.closed:
                    self._close_db()
                    continue
                event(log, "batch_failed", level=logging.ERROR, worker=self.name,
                      error=str(exc).strip()[:300], messages=len(items))
                if len(items) == 1:
                    msg = items[0][0]
                    self._dead_letter_write_error(msg, exc)
                    return
                for item in items:
                    self._commit([item])
                return

    def _prebuild(self, items: list) -> Batch | None:
        """Parse on the collecting thread (overlapping the previous batch's commit); its own
        connection serves catalogue misses. None if the database is unreachable: the committer
        parses then, with its retries."""
        try:
            if self._parse_conn is None or self._parse_conn.closed:
                self._parse_conn = psycopg.connect(self.settings.dsn, autocommit=True,
                                                   application_name=f"prognos-{self.name}-parse")
            return self._build(items, self._parse_conn)
        except _TRANSIENT:
            if self._parse_conn is not None:
                self._parse_conn.close()
            self._parse_conn = None
            return None

    def _committer(self) -> None:
        """Commit queued batches in order and ack each after its commit."""
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=2.0)
                except queue.Empty:
                    self._idle_housekeeping()
                    continue
                if job is None:
                    return
                batch, items = job
                self._commit(items, batch)
                self._ack(items)
                self.committed_batches += 1
                try:                                   # revocations, new sensors (every 30 s)
                    self.catalog.maybe_refresh(self._db().conn)
                except _TRANSIENT:
                    self._close_db()
        except BaseException as exc:                           # noqa: BLE001
            self._fatal = exc
            event(log, "committer_failed", level=logging.ERROR, worker=self.name, error=repr(exc))

    def _idle_housekeeping(self) -> None:
        if self._writer is None:
            return
        try:
            self.catalog.maybe_refresh(self._writer.conn)
            self._writer.flush_stats(len(self.buffer))
        except _TRANSIENT:
            self._close_db()

    def _dead_letter_write_error(self, msg, exc) -> None:
        while True:
            writer = self._db()
            try:
                writer.write(Batch(received=1, dead=[(msg.topic, None, "write_error",
                                                      str(exc).strip()[:500], msg.payload)]))
                return
            except _TRANSIENT:
                self._close_db()
                time.sleep(self.opt.retry.delay(3))

    def _ack(self, items: list) -> None:
        """PUBACK the batch's messages of the current connection, in arrival order."""
        client, gen = self._client, self._generation
        mids = [msg.mid for msg, g, _ in items if g == gen and msg.qos == 1]
        if mids:
            client.ack_many(mids)

    # -- housekeeping ------------------------------------------------------------------
    def _housekeeping(self) -> None:
        conn = None
        next_rollup = time.monotonic() + self.opt.rollup_every_s
        next_retention = time.monotonic()
        while not self._stop.wait(1.0):
            now = time.monotonic()
            if now < next_rollup and now < next_retention:
                continue
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.settings.dsn, autocommit=True,
                                           application_name=f"prognos-{self.name}-housekeeping")
                if now >= next_rollup:
                    n = refresh_rollups(conn, settle_s=self.opt.rollup_settle_s)
                    if n:
                        event(log, "rollup_refreshed", worker=self.name, minute_rows=n)
                    next_rollup = now + self.opt.rollup_every_s
                if now >= next_retention:
                    dropped = apply_retention(conn, self.settings.retention_days)
                    event(log, "retention_applied", worker=self.name, chunks_dropped=dropped,
                          retention_days=self.settings.retention_days)
                    next_retention = now + self.opt.retention_every_s
            except psycopg.Error as exc:
                event(log, "housekeeping_failed", level=logging.WARNING, worker=self.name,
                      error=str(exc).strip()[:200])
                if conn is not None:
                    conn.close()
                conn = None
                next_rollup = max(next_rollup, now + 5)
                next_retention = max(next_retention, now + 5) if next_retention <= now else next_retention
        if conn is not None:
            conn.close()

    # -- main loop ---------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, ready: threading.Event | None = None) -> int:
        """Ingest until :meth:`stop`; returns 0. Flushes and acks what it holds before leaving."""
        opt = self.opt
        self._db()
        self._connect_mqtt()
        hk = None
        if opt.housekeeping if opt.housekeeping is not None else opt.worker_index == 0:
            hk = threading.Thread(target=self._housekeeping, name=f"{self.name}-housekeeping",
                                  daemon=True)
            hk.start()
        event(log, "ingest_started", worker=self.name, topics=self.topics,
              batch_size=opt.batch_size, flush_ms=opt.flush_ms)
        if ready is not None:
            self._connected.wait(30)
            ready.set()
        flush_s, idle_s = opt.flush_ms / 1000.0, opt.idle_ms / 1000.0
        pending: list = []
        pending_bytes = 0
        first_at = 0.0
        committer = threading.Thread(target=self._committer, name=f"{self.name}-commit", daemon=True)
        committer.start()
        try:
            while True:
                if self._fatal is not None:
                    raise RuntimeError(f"committer failed: {self._fatal!r}")
                stopping = self._stop.is_set()
                if pending:
                    wait = min(idle_s, max(0.0, first_at + flush_s - time.monotonic()))
                else:
                    wait = 0.0 if stopping else 0.5
                items = self.buffer.take(opt.batch_size - len(pending), timeout=wait)
                if items:
                    if not pending:
                        first_at = time.monotonic()
                    pending.extend(items)
                    pending_bytes += sum([len(it[0].payload) for it in items])
                if pending and (not items or len(pending) >= opt.batch_size
                                or pending_bytes >= opt.batch_bytes
                                or time.monotonic() - first_at >= flush_s):
                    job = (self._prebuild(pending), pending)
                    while True:                             # bounded: backpressure
                        try:
                            self._jobs.put(job, timeout=1.0)
                            break
                        except queue.Full:
                            if self._fatal is not None or not committer.is_alive():
                                raise RuntimeError(f"committer failed: {self._fatal!r}") from None
                    pending = []
                    pending_bytes = 0
                elif not pending and stopping:
                    break
            self._jobs.put(None)
            committer.join()
        finally:
            if committer.is_alive():
                try:
                    self._jobs.put_nowait(None)
                except queue.Full:
                    pass
                committer.join(30)
            if self._parse_conn is not None:
                self._parse_conn.close()
            if self._client is not None:
                time.sleep(0.05)                   # let the loop send the last acks
                self._client.disconnect()
                self._client.loop_stop()
            if self._writer is not None:
                try:
                    self._writer.flush_stats(0)
                except psycopg.Error:
                    pass
            self._close_db()
            if hk is not None:
                hk.join(5)
            event(log, "ingest_stopped", worker=self.name, batches=self.committed_batches)
        return 0
