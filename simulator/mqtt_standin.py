"""A minimal MQTT 3.1.1 broker, so Moonraker's `[sensor NAME]` (type: mqtt) can run in tests.

Moonraker 0.11's sensor component has one sensor type, `mqtt`: values arrive as MQTT
messages on the sensor's `state_topic`. No broker is installed here, so the tests run this
one (asyncio, in a thread, on a free loopback port) and publish to it with `publish()`.

Supported: CONNECT, PUBLISH (QoS 0, 1 and 2 from clients; delivered with QoS 0), retained
messages, SUBSCRIBE/UNSUBSCRIBE with `+` and `#` filters, PINGREQ, DISCONNECT. No auth.
"""
from __future__ import annotations

import asyncio
import struct
import threading
from typing import Dict, List, Optional, Set, Tuple


def topic_matches(topic_filter: str, topic: str) -> bool:
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def encode_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class _Client:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.filters: Set[str] = set()

    def send(self, packet_type: int, body: bytes) -> None:
        self.writer.write(bytes([packet_type]) + encode_length(len(body)) + body)


class MqttStandin:
    def __init__(self) -> None:
        self.port = 0
        self.clients: List[_Client] = []
        self.retained: Dict[str, bytes] = {}
        self.received: List[Tuple[str, bytes]] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "MqttStandin":
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="mqtt-standin", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def shutdown() -> None:
            for client in list(self.clients):
                client.writer.close()
            loop.stop()
        loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> "MqttStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def subscribed(self, topic: str) -> bool:
        return any(topic_matches(f, topic) for c in list(self.clients) for f in list(c.filters))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish from the test thread, as another MQTT client would."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._deliver, topic, payload, retain)

    def _deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        self.received.append((topic, payload))
        if retain:
            self.retained[topic] = payload
        for client in list(self.clients):
            if any(topic_matches(f, topic) for f in client.filters):
                client.send(0x30, utf8(topic) + payload)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer)
        self.clients.append(client)
        try:
            while True:
                first = await reader.readexactly(1)
                length, shift = 0, 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = await reader.readexactly(length) if length else b""
                if not self._handle(client, first[0], body):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if client in self.clients:
                self.clients.remove(client)
            writer.close()

    def _handle(self, client: _Client, header: int, body: bytes) -> bool:
        kind, flags = header >> 4, header & 0x0F
        if kind == 1:  # CONNECT
            client.send(0x20, b"\x00\x00")
        elif kind == 3:  # PUBLISH
            qos, retain = (flags >> 1) & 0x03, bool(flags & 0x01)
            (tlen,) = struct.unpack("!H", body[:2])
            topic = body[2:2 + tlen].decode()
            pos = 2 + tlen
            if qos:
                packet_id = body[pos:pos + 2]
                pos += 2
                client.send(0x40 if qos == 1 else 0x50, packet_id)
            self._deliver(topic, body[pos:], retain)
        elif kind == 6:  # PUBREL
            client.send(0x70, body[:2])
        elif kind == 8:  # SUBSCRIBE
            packet_id, pos, granted = body[:2], 2, bytearray()
            while pos < len(body):
                (flen,) = struct.unpack("!H", body[pos:pos + 2])
                topic_filter = body[pos + 2:pos + 2 + flen].decode()
                pos += 2 + flen + 1
                client.filters.add(topic_filter)
                granted.append(0)
            client.send(0x90, packet_id + bytes(granted))
            for topic, payload in list(self.retained.items()):
                if any(topic_matches(f, topic) for f in client.filters):
                    client.send(0x30, utf8(topic) + payload)
        elif kind == 10:  # UNSUBSCRIBE
            pos = 2
            while pos < len(body):
                (flen,) = struct.unpack("!H", body[pos:pos + 2])
                client.filters.discard(body[pos + 2:pos + 2 + flen].decode())
                pos += 2 + flen
            client.send(0xB0, body[:2])
        elif kind == 12:  # PINGREQ
            client.send(0xD0, b"")
        elif kind == 14:  # DISCONNECT
            return False
        return True
