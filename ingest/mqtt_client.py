"""The paho client ingest uses: stock paho-mqtt 2 (callback API 2, MQTT 5, manual acks) with a
read path for a firehose.

Stock paho reads each packet with several ``recv`` calls (type byte, each length byte, body) and
handles one packet per ``select()`` wake-up when nothing is in flight. Every ``recv`` releases
and re-takes the GIL, which the writer threads of the same process hold much of the time, so
the network thread queues for the GIL several times per message. This subclass reads the socket
in 256 KiB chunks, serves paho's small reads from that chunk, and handles every complete packet
before going back to ``select()``. Nothing else changes: packet parsing, acks, keepalive and
reconnects are paho's.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

_CHUNK = 256 * 1024
_MIN_PACKETS_PER_WAKE = 2000


class BufferedReadClient(mqtt.Client):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._roff = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._roff >= len(self._rbuf):
            data = super()._sock_recv(_CHUNK)          # BlockingIOError when nothing is there
            if not data:
                return data                           # end of stream: paho sees the loss
            self._rbuf, self._roff = data, 0
        out = self._rbuf[self._roff:self._roff + bufsize]
        self._roff += len(out)
        return out

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Handle packets until the socket has nothing more; return to select() only with an
        empty buffer (select() cannot see bytes already read into it)."""
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        n = 0
        while True:
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
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
