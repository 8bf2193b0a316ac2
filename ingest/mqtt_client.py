"""The paho client ingest uses: stock paho-mqtt 2 (callback API 2, MQTT 5, manual acks) with a
read path for a firehose.

Stock paho reads each packet with several ``recv`` calls (type byte, each length byte, body),
handles one packet per ``select()`` wake-up when nothing is in flight, and builds for every
PUBLISH an ``MQTTMessage`` with a ``threading.Condition`` and an MQTT 5 ``Properties`` object
(two thirds of its time per message). This subclass:

- reads the socket in 256 KiB chunks, serves paho's small reads from that chunk, and handles
  every complete packet before going back to ``select()``;
- when :attr:`BufferedReadClient.on_deliveries` is set, decodes the complete QoS 0/1 PUBLISH
  packets without properties that are in the chunk itself and hands them over as a list of
  :class:`Delivery` (topic, payload, mid, qos) in one call. Everything else (other packet
  types, QoS 2, packets with properties, a packet cut by the chunk's end, malformed lengths)
  goes through paho's own code, to ``on_message``.

Acks, keepalive, subscriptions and reconnects stay paho's.

>>> c = BufferedReadClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
>>> got = []
>>> c.on_deliveries = got.extend
>>> pkt = bytes([0x32, 2 + 5 + 2 + 1 + 2]) + b"\\x00\\x05a/b/c" + b"\\x00\\x07" + b"\\x00" + b"{}"
>>> c._rbuf, c._roff = pkt + pkt[:3], 0          # one whole PUBLISH, then a cut one
>>> c._deliver_buffered()
1
>>> got[0].topic, got[0].payload, got[0].mid, got[0].qos, c._roff == len(pkt)
('a/b/c', b'{}', 7, 1, True)
"""

from __future__ import annotations

from collections.abc import Callable

import paho.mqtt.client as mqtt

_CHUNK = 256 * 1024
_PUBACK_CMD = 0x40
_PUBACK_HEAD = b"\x40\x02"                 # PUBACK, remaining length 2 (reason: success)
_MIN_PACKETS_PER_WAKE = 2000


class Delivery:
    """One received PUBLISH: what ingest needs of paho's ``MQTTMessage``, and nothing more."""

    __slots__ = ("topic", "payload", "mid", "qos", "dup")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int, dup: bool = False):
        self.topic = topic
        self.payload = payload
        self.mid = mid
        self.qos = qos
        self.dup = dup

    def __repr__(self) -> str:
        return f"Delivery({self.topic!r}, {len(self.payload)} bytes, mid={self.mid}, qos={self.qos})"


class BufferedReadClient(mqtt.Client):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._roff = 0
        #: Receives lists of :class:`Delivery` decoded on the fast path (None: paho's path only).
        self.on_deliveries: Callable[[list[Delivery]], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._roff >= len(self._rbuf):
            data = super()._sock_recv(_CHUNK)          # BlockingIOError when nothing is there
            if not data:
                return data                           # end of stream: paho sees the loss
            self._rbuf, self._roff = data, 0
            if self.on_deliveries is not None and self._in_packet["command"] == 0:
                self._deliver_buffered()
                if self._roff >= len(self._rbuf):     # all delivered: back to select() (acks)
                    raise BlockingIOError
        out = self._rbuf[self._roff:self._roff + bufsize]
        self._roff += len(out)
        return out

    def _deliver_buffered(self) -> int:
        """Decode the whole QoS 0/1 PUBLISH packets without properties at the read position,
        hand them to ``on_deliveries`` in one call, and leave the position at the first packet
        paho must handle. Only called between packets (paho's packet state is empty)."""
        buf, off, end = self._rbuf, self._roff, len(self._rbuf)
        out: list[Delivery] = []
        append = out.append
        while off + 2 <= end:
            cmd = buf[off]
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 != 0x30 or qos > 1:
                break                                  # not PUBLISH, or QoS 2 / invalid QoS
            p, rl, mult = off + 1, 0, 1
            while p < end and p - off <= 4:
                b = buf[p]
                p += 1
                rl += (b & 0x7F) * mult
                mult <<= 7
                if b < 0x80:
                    break
            else:
                break                                  # length cut by the chunk, or too long
            stop = p + rl
            if stop > end or rl < 3:
                break                                  # cut by the chunk's end (or malformed)
            tlen = (buf[p] << 8) | buf[p + 1]
            q = p + 2 + tlen
            if qos:
                mid = (buf[q] << 8) | buf[q + 1]
                q += 2
            else:
                mid = 0
            if q >= stop or buf[q] != 0:
                break                                  # properties (or malformed): paho's path
            append(Delivery(buf[p + 2:p + 2 + tlen].decode("utf-8", "replace"), buf[q + 1:stop],
                            mid, qos, bool(cmd & 0x08)))
            off = stop
        self._roff = off
        if out:
            with self._msgtime_mutex:
                self._last_bytes_received = mqtt.time_func()
            with self._in_callback_mutex:
                self.on_deliveries(out)
            if not self._manual_ack:
                self.ack_many([d.mid for d in out if d.qos == 1])
        return len(out)

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK QoS 1 messages, in the given order.

        paho's ``ack()`` queues one 4-byte packet and wakes its network thread per message
        (two syscalls each); this queues them as one write through the same queue, so they
        stay ordered with paho's own packets."""
        if len(mids) < 8:
            for mid in mids:
                self._send_puback(mid)
            return
        self._packet_queue(_PUBACK_CMD, b"".join([_PUBACK_HEAD + m.to_bytes(2, "big") for m in mids]), 0, 0)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Handle packets until the socket has nothing more; return to select() only with an
        empty buffer (select() cannot see bytes already read into it)."""
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        n = 0
        while True:
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            if (self.on_deliveries is not None and self._in_packet["command"] == 0
                    and self._roff < len(self._rbuf)):
                n += self._deliver_buffered()
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            n += 1
            if n >= _MIN_PACKETS_PER_WAKE and self._roff >= len(self._rbuf):
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS   # let the loop write (acks)

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self._rbuf, self._roff = b"", 0                # bytes of the old connection
        return super().reconnect()
