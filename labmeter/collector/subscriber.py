"""The collector's MQTT 5 session: one network thread that reads PUBLISHes in bulk and acks them.

Why not paho: its network thread reads every packet with four ``recv()`` calls, builds an MQTT 5
``Properties`` object per PUBLISH and sends each PUBACK through a wake-up socket; measured with
``bench/ingest.py`` (README, docs) it capped a bare subscriber on this machine well below what
Mosquitto delivers, and the collector below that. This session does only what the collector
needs, in bulk:

- one ``recv()`` of up to 256 KiB yields every complete PUBLISH in it, handed over as one list
  (``on_messages``), so per-message work is a few slices;
- the acks of a written batch go out as one ``send()`` of back-to-back PUBACKs, and the
  confirmations to agents (``publish``: QoS 0, retained) as one ``send()`` each interval;
- the control packets (CONNECT, SUBSCRIBE, CONNACK, SUBACK, DISCONNECT, PINGREQ) are written
  and read by ``mqtt5``, the aiomqtt maintainers' MQTT 5 codec; only PUBLISH is decoded here,
  because it keeps the topic as raw bytes (the contract says why a topic is not UTF-8, where
  the codec raises) and it is the hot path.

Guarantees kept from paho's use: clean start off with a session expiry (the broker queues
while we are away), the Receive Maximum in CONNECT as the cap on unacked messages (Mosquitto
honours it exactly), and generations: message ids restart with every connection, so each
connection is a new generation and an ack for an older one is never sent (the broker
redelivers those messages). The subscription is made again on every connection, whatever
the broker says of the session: Mosquitto 2.0.11 restores a persistent session's plain
subscriptions after a restart but not its shared ones (``$share/...``), and other brokers keep
less. Everything is sent from the network thread only: an SSL socket must not be written and
read from two threads at once.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

import mqtt5

from labmeter.collector.convert import Delivery
from labmeter.config import MqttConfig
from labmeter.errors import LabmeterError

log = logging.getLogger(__name__)

READ_SIZE = 262144
PUBLISH, PUBACK, PINGRESP, DISCONNECT = 0x30, 0x40, 0xD0, 0xE0


class ProtocolError(LabmeterError):
    """The broker sent something this session cannot follow: reconnect."""


class Subscriber:
    """Resume a persistent session, subscribe to one filter, hand PUBLISHes over, send acks.

    ``on_messages(generation, deliveries)`` runs on the network thread for each read: it must
    only queue. ``ack(generation, mids)`` and ``publish(packets)`` may be called from any
    thread.
    """

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        topic_filter: str,
        *,
        receive_max: int,
        session_expiry_s: int,
        on_messages: Callable[[int, list[Delivery]], None],
        on_connect: Callable[[bool], None] = lambda session_present: None,
        on_disconnect: Callable[[str], None] = lambda reason: None,
        on_acked: Callable[[int, int], None] = lambda sent, settled: None,
        unsubscribe: str = "",
        retire: bool = False,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.topic_filter = topic_filter
        self.unsubscribe = unsubscribe  # a filter this session may hold from an older layout
        # Retire the session: unsubscribe instead of subscribing (what it holds still comes),
        # and once ``end_session`` is set, end it with the DISCONNECT.
        self.retire = retire
        self.end_session = False
        self.receive_max = receive_max
        self.session_expiry_s = session_expiry_s
        self.on_messages = on_messages
        # Whether to read more PUBLISHes now: not while the collector holds its budget of
        # unacked messages (the broker keeps the rest; an ack wakes this thread).
        self.ready = ready
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        # (PUBACKs sent, messages settled: those plus QoS 0 ones and those of a connection
        # that is gone, which the broker redelivers)
        self.on_acked = on_acked
        self.generation = 0  # connections so far; only the network thread changes it
        self._acks: deque[tuple[int, list[int]]] = deque()
        self._out: deque[bytes] = deque()  # QoS 0 PUBLISH packets, for whatever connection
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._woken = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-mqtt", daemon=True)

    # --- any thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def ack(self, generation: int, mids: list[int]) -> None:
        """Queue PUBACKs; sent at once by the network thread, unless the connection changed."""
        self._acks.append((generation, mids))
        self._wake()

    def publish(self, packets: bytes) -> None:
        """Queue QoS 0 PUBLISH packets (written by ``mqtt5``); sent at once by the network
        thread, on the next connection if there is none (lost if that one drops meanwhile)."""
        self._out.append(packets)
        self._wake()

    def stop(self, timeout: float = 5.0) -> None:
        """Send the acks and publishes queued, DISCONNECT (the session stays), end the thread."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):  # stopped meanwhile
                self._wake_w.send(b"\0")

    # --- network thread ---------------------------------------------------------------------

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            sock: socket.socket | None = None
            try:
                sock = self._connect()
                delay = 1.0
                self._serve(sock)
                reason = "stopped"
            except (OSError, ProtocolError) as exc:
                reason = str(exc) or type(exc).__name__
                if not self._stop.is_set():
                    log.warning("MQTT connection to %s lost: %s", self.config.url, reason)
            except Exception as exc:  # a bug here must not end the thread: reconnect
                reason = repr(exc)
                log.exception("MQTT session failed; reconnecting")
            finally:
                if sock is not None:
                    sock.close()
            if sock is not None and self.generation:
                self.on_disconnect(reason)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 10.0)

    def _connect(self) -> socket.socket:
        cfg = self.config
        sock = socket.create_connection((cfg.host, cfg.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cfg.tls:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            sock = context.wrap_socket(sock, server_hostname=cfg.host)
        connect = mqtt5.ConnectPacket(
            self.client_id,
            username=cfg.username,
            password=cfg.password.reveal().encode() if cfg.password is not None else None,
            clean_start=False,
            keep_alive=cfg.keepalive_s,
            session_expiry_interval=self.session_expiry_s,
            receive_max=self.receive_max,  # the cap on unacked messages (DESIGN.md)
        )
        sock.sendall(connect.write())
        self._buf = b""
        connack = self._read_control(sock)
        if not isinstance(connack, mqtt5.ConnAckPacket):
            raise ProtocolError(f"expected CONNACK, got {type(connack).__name__}")
        if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
            raise ProtocolError(f"broker refused the connection: {connack.reason_code.name}")
        sock.settimeout(None)
        # A new connection is a new generation before any of its PUBLISHes is read.
        self.generation += 1
        filters = [mqtt5.TopicFilter(self.topic_filter, max_qos=mqtt5.QoS.AT_LEAST_ONCE)]
        if self.retire:
            packets = [mqtt5.UnsubscribePacket(2, [self.topic_filter]).write()]
        else:
            packets = [mqtt5.SubscribePacket(1, filters).write()]
        if self.unsubscribe:
            packets.append(mqtt5.UnsubscribePacket(2, [self.unsubscribe]).write())
        sock.sendall(b"".join(packets))
        self.on_connect(connack.session_present)
        return sock

    def _read_control(self, sock: socket.socket) -> mqtt5.Packet:
        """Read one packet while connecting (nothing else can come before CONNACK)."""
        while True:
            if self._buf:
                try:
                    packet, used = mqtt5.read(memoryview(self._buf))
                except IndexError:  # incomplete
                    pass
                else:
                    self._buf = self._buf[used:]
                    return packet
            data = sock.recv(READ_SIZE)
            if not data:
                raise ProtocolError("broker closed the connection")
            self._buf += data

    def _serve(self, sock: socket.socket) -> None:
        keepalive = self.config.keepalive_s
        last_sent = last_read = time.monotonic()
        pending = getattr(sock, "pending", None)  # an SSL socket's decrypted bytes
        wake = self._wake_r
        generation = self.generation
        buf = self._feed(generation, self._buf) if self._buf else b""  # came with CONNACK
        while True:
            if self._acks and self._send_acks(sock, generation):
                last_sent = time.monotonic()
            if self._out:
                out = self._out
                sock.sendall(b"".join([out.popleft() for _ in range(len(out))]))
                last_sent = time.monotonic()
            if self._stop.is_set():
                expiry = 0 if self.end_session else None  # None: the session stays
                sock.sendall(mqtt5.DisconnectPacket(session_expiry_interval=expiry).write())
                return
            taking = self.ready()
            if not (taking and pending and pending()):
                timeout = max(0.05, last_sent + keepalive - time.monotonic()) if keepalive else 1
                watched = [sock, wake] if taking else [wake]
                readable, _, _ = select.select(
                    watched, [], [], min(timeout, 1.0 if taking else 0.25)
                )
                if wake in readable:
                    self._woken = False
                    with contextlib.suppress(BlockingIOError):
                        wake.recv(4096)
                now = time.monotonic()
                if keepalive and now - last_sent >= keepalive:
                    sock.sendall(mqtt5.PingReqPacket().write())
                    last_sent = now
                if not taking:
                    last_read = now  # not reading on purpose: the broker is not silent
                elif keepalive and now - last_read > 1.5 * keepalive:
                    raise ProtocolError(f"nothing from the broker for {now - last_read:.0f} s")
                if sock not in readable:
                    continue
            data = sock.recv(READ_SIZE)
            if not data:
                raise ProtocolError("broker closed the connection")
            last_read = time.monotonic()
            buf = self._feed(generation, buf + data if buf else data)

    def _feed(self, generation: int, buf: bytes) -> bytes:
        """Hand over the PUBLISHes in ``buf``; return the incomplete packet at its end."""
        try:
            deliveries, used = self._decode(buf)
        except IndexError as exc:  # a length that points past the packet's end
            raise ProtocolError("malformed packet") from exc
        if deliveries:
            self.on_messages(generation, deliveries)
        return buf[used:]

    def _send_acks(self, sock: socket.socket, generation: int) -> bool:
        """Send the queued acks of this generation as one write; drop older ones."""
        out = []
        settled = 0
        acks = self._acks
        while acks:
            gen, mids = acks.popleft()
            settled += len(mids)
            if gen == generation:
                out.extend([b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids if mid])
        if out:
            sock.sendall(b"".join(out))
        if settled:
            self.on_acked(len(out), settled)
        return bool(out)

    def _decode(self, buf: bytes) -> tuple[list[Delivery], int]:
        """Every complete packet in ``buf``: the PUBLISHes, and how many bytes were used."""
        out: list[Delivery] = []
        pos, end = 0, len(buf)
        while pos + 2 <= end:
            header = buf[pos]
            # Remaining length: a variable byte integer of one to four bytes.
            i, length, shift = pos + 1, 0, 0
            while True:
                if i >= end:
                    return out, pos
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("malformed remaining length")
            stop = i + length
            if stop > end:
                break
            if header & 0xF0 == PUBLISH:
                out.append(_publish(header, buf, i, stop))
            else:
                self._control(header, buf[pos:stop])
            pos = stop
        return out, pos

    def _control(self, header: int, packet: bytes) -> None:
        kind = header & 0xF0
        if kind in (PINGRESP, PUBACK):  # PUBACK: we publish nothing; ignore, as a broker would
            return
        try:
            parsed, _ = mqtt5.read(memoryview(packet))
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"malformed packet 0x{header:02x}: {exc}") from exc
        if isinstance(parsed, mqtt5.SubAckPacket):
            refused = [c for c in parsed.reason_codes if int(c) >= 0x80]
            if refused:
                raise ProtocolError(f"broker refused the subscription: {refused[0].name}")
        elif isinstance(parsed, mqtt5.DisconnectPacket):
            raise ProtocolError(f"broker disconnected us: {parsed.reason_code.name}")
        # UNSUBACK and anything else harmless: nothing to do.


def _publish(header: int, buf: bytes, start: int, stop: int) -> Delivery:
    """One PUBLISH's packet id, QoS, raw topic, payload and raw properties (MQTT 5, 3.3)."""
    qos = (header >> 1) & 3
    topic_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
    topic = buf[start + 2 : topic_end]
    pos = topic_end
    mid = 0
    if qos:
        mid = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
    # Properties: their length (a variable byte integer), then kept raw (an agent's row
    # label is a user property: ``user_property`` reads it once the message is written).
    length, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    props = buf[pos : pos + length] if length else b""
    pos += length
    if pos > stop:
        raise ProtocolError("malformed PUBLISH")
    return mid, qos, topic, buf[pos:stop], props


# Fixed-size PUBLISH properties (MQTT 5, 2.2.2.2): payload format, message expiry, topic alias.
_FIXED = {0x01: 1, 0x02: 4, 0x23: 2}
_STRINGS = frozenset({0x03, 0x08, 0x09})  # content type, response topic, correlation data
_USER = 0x26


def user_property(props: bytes, name: bytes) -> bytes | None:
    """The value of the first user property ``name`` in a PUBLISH's raw properties; None if
    absent or if the properties cannot be read (then nothing is confirmed: resent later)."""
    pos, end = 0, len(props)
    try:
        while pos < end:
            ident = props[pos]
            pos += 1
            if ident == _USER:
                size = (props[pos] << 8) | props[pos + 1]
                key = props[pos + 2 : pos + 2 + size]
                pos += 2 + size
                size = (props[pos] << 8) | props[pos + 1]
                if key == name:
                    value = props[pos + 2 : pos + 2 + size]
                    return value if len(value) == size else None
                pos += 2 + size
            elif ident in _FIXED:
                pos += _FIXED[ident]
            elif ident in _STRINGS:
                pos += 2 + ((props[pos] << 8) | props[pos + 1])
            elif ident == 0x0B:  # subscription identifier: a variable byte integer
                while props[pos] & 0x80:
                    pos += 1
                pos += 1
            else:
                return None
    except IndexError:
        return None
    return None
