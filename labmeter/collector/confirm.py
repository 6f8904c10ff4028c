"""Confirmations to agents: which of their rows are settled, so they may delete them.

An agent labels each row it sends with its queue's id and the row's id (an MQTT 5 user
property, ``contract.ROW_PROPERTY``). Once a batch is written and its dead letters are on
disk, the writer thread hands its messages here; their rows are gathered per device and agent
queue and published every ``confirm_interval_s`` on the device's own confirmation topic
(``contract.confirm_topic``, one per collector session), retained, QoS 0, as the list of the
row ids this session settled: never a watermark, so a row the broker dropped, or that another
session of a shared subscription holds, is never covered. A confirmation that does not arrive
costs a resend (same points), never a row: that is why QoS 0 is enough, and why the retained
copy (the last one per device and session, read by an agent when it subscribes) only spares
resends of rows written while the agent was away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import mqtt5

from labmeter.collector.convert import Delivery
from labmeter.collector.metrics import Metrics
from labmeter.collector.subscriber import user_property
from labmeter.contract import (
    MAX_ROW_ID,
    ROW_PROPERTY,
    confirm_topic,
    confirm_writer,
    encode_confirmations,
    parse_row_label,
)

_ROW = ROW_PROPERTY.encode()
# The properties of a labelled message as agents send them: that user property alone (its
# id and name), then its value's two-byte length, then the value "<16 hex>:<digits>".
_ONLY_ROW = b"\x26" + len(_ROW).to_bytes(2, "big") + _ROW
_VALUE = len(_ONLY_ROW) + 2  # where the value starts
_CACHE_LIMIT = 65536  # topics and queue ids kept: input full of distinct ones cannot grow them


class Confirmer:
    """Settled rows, gathered per (confirmation topic, agent queue) until the next tick."""

    def __init__(
        self,
        client_id: str,
        interval_s: float,
        publish: Callable[[bytes], None],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = confirm_writer(client_id)
        self.interval_s = interval_s
        self.publish = publish
        self.metrics = metrics
        self._clock = clock
        self._due = clock() + interval_s
        self._pending: dict[tuple[str, str], list[int]] = {}
        self._places: dict[bytes, str] = {}  # raw topic -> its confirmation topic
        self._queues: dict[bytes, str] = {}  # queue ids already checked, by their raw bytes

    def settled(self, deliveries: Iterable[Delivery]) -> None:
        """Messages written (or dead-lettered, durably): their rows may be confirmed.

        Per message of a drain, so the labels agents send (that one user property, a value
        of 18-36 bytes) are read with a few slices; anything else goes through
        ``user_property`` and ``parse_row_label``.
        """
        pending, places = self._pending, self._places
        for _mid, _qos, topic, _payload, props in deliveries:
            if not props:
                continue  # an agent that does not label its rows (or not a queued row)
            if (
                props[:_VALUE] == _ONLY_ROW + (len(props) - _VALUE).to_bytes(2, "big")
                and len(props) > _VALUE + 17
            ):
                queue = self._queues.get(props[_VALUE : _VALUE + 16])
                digits = props[_VALUE + 17 :]
                if queue is None or props[_VALUE + 16] != 0x3A or not digits.isdigit():
                    label = parse_row_label(props[_VALUE:])
                    if label is None:
                        continue
                    queue, row = label
                    self._remember(queue)
                else:
                    row = int(digits)
                    if not 0 < row <= MAX_ROW_ID:
                        continue
            else:
                value = user_property(props, _ROW)
                label = parse_row_label(value) if value is not None else None
                if label is None:
                    continue
                queue, row = label
            place = places.get(topic)
            if place is None:
                place = confirm_topic(topic, self.writer)
                if place is None:
                    continue
                if len(places) >= _CACHE_LIMIT:
                    places.clear()
                places[topic] = place
            rows = pending.get((place, queue))
            if rows is None:
                pending[(place, queue)] = [row]
            else:
                rows.append(row)

    def _remember(self, queue: str) -> None:
        """A queue id already checked: the fast path takes its raw bytes from now on."""
        if len(self._queues) >= _CACHE_LIMIT:
            self._queues.clear()
        self._queues[queue.encode()] = queue

    def tick(self, *, force: bool = False) -> None:
        """Publish what was gathered, once per interval (``force``: now, as at shutdown)."""
        now = self._clock()
        if now < self._due and not force:
            return
        self._due = now + self.interval_s
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        packets = []
        rows = 0
        for (topic, queue), ids in pending.items():
            rows += len(ids)
            for payload in encode_confirmations(queue, ids):
                packets.append(
                    mqtt5.PublishPacket(
                        topic=topic, payload=payload, qos=mqtt5.QoS.AT_MOST_ONCE, retain=True
                    ).write()
                )
        self.publish(b"".join(packets))
        self.metrics.confirmed_total.inc(rows)
        self.metrics.confirmations_total.inc(len(packets))
