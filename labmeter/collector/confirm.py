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
    ROW_PROPERTY,
    confirm_topic,
    confirm_writer,
    encode_confirmations,
    parse_row_label,
)

_ROW = ROW_PROPERTY.encode()


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

    def settled(self, deliveries: Iterable[Delivery]) -> None:
        """Messages written (or dead-lettered, durably): their rows may be confirmed."""
        pending, writer = self._pending, self.writer
        for _mid, _qos, topic, _payload, props in deliveries:
            if not props:
                continue  # an agent that does not label its rows (or not a queued row)
            value = user_property(props, _ROW)
            label = parse_row_label(value) if value is not None else None
            where = confirm_topic(topic, writer) if label is not None else None
            if label is None or where is None:
                continue
            queue, row = label
            rows = pending.get((where, queue))
            if rows is None:
                pending[(where, queue)] = [row]
            else:
                rows.append(row)

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
