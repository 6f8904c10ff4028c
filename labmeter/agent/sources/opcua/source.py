"""OPC UA source: a subscription on the machine's state, never a poll of it.

A thread runs asyncua's event loop: connect (security policy, user or certificate login from
the config), find the nodes, read their values once, then subscribe to changes. Every
publish response, data or keep-alive, is an answer; silent for ``timeout_s`` (two keep-alive
periods and a request timeout by default), or a connection that ends, makes the machine
unobserved from its last answer on (``Track``). Reconnects back off from ``reconnect_s`` to
``reconnect_max_s``; after one, the state is what the server reports then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto import security_policies

from labmeter.agent.clock import REAL_CLOCK, Clock
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.opcua.protocol import (
    Settings,
    decide,
    item_state,
    node_id,
    operation_mode,
    parse,
)
from labmeter.agent.sources.reconnect import Backoff
from labmeter.agent.sources.track import Seen, Track
from labmeter.config import AgentConfig
from labmeter.machinery import (
    ITEM_STATE_NAME,
    MACHINES_FOLDER,
    NAMESPACE,
    OPERATION_MODE_NAMES,
    ItemState,
    OperationMode,
)

log = logging.getLogger(__name__)
# asyncua logs whole requests at DEBUG, an ActivateSession's password among them: its loggers
# never go below INFO here, whatever the root logger's level (credentials are never logged).
_ASYNCUA_LOG = logging.getLogger("asyncua")

TICK_S = 0.1  # how often the loop looks at the subscription's last publish
# A publish response carries each changed node as its own notification: changes that arrive
# this close together are one change of the machine (item state and mode written together).
SETTLE_S = 0.02
FIND_DEPTH = 3  # MachineryBuildingBlocks/MachineryItemState, Monitoring/Status/...


class NotConfigured(Exception):
    """The server lacks what the config asks for (no Machinery namespace, no such node)."""


class _Handler:
    """asyncua calls these on the loop's thread; they only hand values to the source."""

    def __init__(self, source: OpcUaSource, lost: asyncio.Event) -> None:
        self.source = source
        self.lost = lost

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.source._value(node.nodeid.to_string(), val)

    def status_change_notification(self, status: Any) -> None:
        self.lost.set()  # the server ended the subscription (BadTimeout, BadShutdown)


class OpcUaSource:
    def __init__(self, config: AgentConfig, clock: Clock = REAL_CLOCK) -> None:
        self.settings: Settings = parse(config.options)
        if _ASYNCUA_LOG.getEffectiveLevel() < logging.INFO:
            _ASYNCUA_LOG.setLevel(logging.INFO)
        self.track = Track(clock, self.settings.timeout_s)
        # Changes reach the meter up to a timeout late (a silence is known only then).
        self.lookback_s = self.settings.timeout_s + 2 * config.poll_s + 1.0
        self.counters = {"connects": 0, "connect_errors": 0, "unmapped": 0}
        self.last_error = ""
        self.machine_name: str | None = None
        self._namespace = -1
        self._roles: dict[str, str] = {}  # NodeId string -> item | mode | program | tag
        self._tag_of: dict[str, str] = {}  # NodeId string as asyncua writes it -> as configured
        self._values: dict[str, Any] = {}
        self._settling: float | None = None  # when the first change of a burst arrived
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._wake: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="labmeter-opcua", daemon=True)
        self._thread.start()

    # --- the runner's side ---------------------------------------------------------------

    def poll(self) -> Reading:
        return self.track.reading({f"opcua_{k}": float(v) for k, v in self.counters.items()})

    def drain_events(self) -> list[SourceEvent]:
        return self.track.drain_events()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self._loop.call_soon_threadsafe(self._wake_up)
        self._thread.join(timeout=10)

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- the loop's side -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        backoff = Backoff(self.settings.reconnect_s, self.settings.reconnect_max_s)
        while not self._stop.is_set():
            lost = asyncio.Event()
            client = await self._client(lost)
            try:
                await client.connect()
            except Exception as exc:
                self._failed("cannot connect", exc)
            else:
                self.counters["connects"] += 1
                try:
                    if await self._watch(client, lost):
                        backoff.reset()
                except Exception as exc:
                    self._failed("connection lost", exc)
                finally:
                    self.track.lost("disconnected")
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.disconnect(), 2.0)
            if not self._stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff.delay())

    def _failed(self, what: str, exc: BaseException) -> None:
        self.counters["connect_errors"] += 1
        reason = f"{what}: {type(exc).__name__}: {exc}"[:300]
        if reason != self.last_error:  # each new reason once, not every retry
            log.warning("OPC UA %s: %s", self.settings.endpoint_shown, reason)
            self.last_error = reason

    async def _client(self, lost: asyncio.Event) -> Client:
        s = self.settings
        client = Client(s.endpoint, timeout=s.request_timeout_s, watchdog_intervall=1.0)
        client.strip_url_credentials = True

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        if s.security_policy != "None":
            assert s.certificate is not None and s.private_key is not None
            await client.set_security(
                getattr(security_policies, f"SecurityPolicy{s.security_policy}"),
                s.certificate,
                s.private_key,
                server_certificate=s.server_certificate,
                mode=getattr(ua.MessageSecurityMode, s.security_mode),
            )
        if s.login == "user":
            assert s.username is not None and s.password is not None
            client.set_user(s.username)
            client.set_password(s.password.reveal())
        elif s.login == "certificate":
            assert s.certificate is not None and s.private_key is not None
            await client.load_client_certificate(s.certificate)
            await client.load_private_key(s.private_key)  # type: ignore[arg-type]
        return client

    async def _watch(self, client: Client, lost: asyncio.Event) -> bool:
        """Subscribe and follow the machine until the connection ends or the agent stops;
        True when the session got as far as a subscription (the backoff starts over)."""
        nodes = await self._resolve(client)
        handler = _Handler(self, lost)
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self.settings.publish_ms,
            RequestedLifetimeCount=3 * self.settings.keepalive_count + 1,
            RequestedMaxKeepAliveCount=self.settings.keepalive_count,
            MaxNotificationsPerPublish=1000,
            PublishingEnabled=True,
            Priority=0,
        )
        # The values now, then every change from the subscription.
        for key, value in zip(nodes, await client.read_values(list(nodes.values())), strict=True):
            self._values[key] = value
        self._update()
        sub = await client.create_subscription(params, handler)
        await sub.subscribe_data_change(list(nodes.values()))
        self.last_error = ""
        seen_publish = sub.last_publish_at
        while not self._stop.is_set() and not lost.is_set():
            await asyncio.sleep(TICK_S)
            if sub.last_publish_at != seen_publish:  # a publish response: the server answers
                seen_publish = sub.last_publish_at
                self.track.answered()
        return True

    async def _resolve(self, client: Client) -> dict[str, Node]:
        """NodeId string -> node for everything to subscribe to; roles remembered."""
        s = self.settings
        roles: dict[str, str] = {}
        if s.model in ("machinery", "both"):
            try:
                self._namespace = await client.get_namespace_index(NAMESPACE)
            except ValueError as exc:
                raise NotConfigured(
                    f"the server does not implement OPC 40001-1 (no namespace {NAMESPACE}); "
                    'configure [[agent.options.tags]] and model = "tags"'
                ) from exc
            machine = await self._machine(client)
            item = await self._find(machine, (ITEM_STATE_NAME,))
            roles[(await item.get_child(["0:CurrentState", "0:Id"])).nodeid.to_string()] = "item"
            with contextlib.suppress(NotConfigured):  # the mode is optional in OPC 40001-1
                mode = await self._find(machine, OPERATION_MODE_NAMES)
                node = await mode.get_child(["0:CurrentState", "0:Id"])
                roles[node.nodeid.to_string()] = "mode"
        self._tag_of = {}
        for tag in s.tags:
            key = client.get_node(tag.node_id).nodeid.to_string()
            roles[key] = "tag"
            self._tag_of[key] = tag.node_id
        if s.program_node is not None:
            roles[client.get_node(s.program_node).nodeid.to_string()] = "program"
        self._roles = roles
        self._values = {}
        return {key: client.get_node(key) for key in roles}

    async def _machine(self, client: Client) -> Node:
        if self.settings.machine is not None:
            node = client.get_node(self.settings.machine)
        else:
            folder = client.get_node(node_id(MACHINES_FOLDER, self._namespace))
            machines = await folder.get_children()
            if len(machines) != 1:
                names = [(await m.read_browse_name()).Name for m in machines]
                raise NotConfigured(
                    f"{len(machines)} machines under Machines ({', '.join(names) or 'none'}): "
                    "set agent.options.machine to the NodeId of this one"
                )
            node = machines[0]
        self.machine_name = (await node.read_browse_name()).Name
        return node

    async def _find(self, machine: Node, names: tuple[str, ...]) -> Node:
        """The machine's MachineryItemState (or operation mode), within a few levels."""
        level = [machine]
        for _ in range(FIND_DEPTH):
            below: list[Node] = []
            for node in level:
                for ref in await node.get_children_descriptions():
                    name = ref.BrowseName
                    child = Node(machine.session, ref.NodeId)
                    if name.Name in names and name.NamespaceIndex == self._namespace:
                        return child
                    if ref.NodeClass == ua.NodeClass.Object:
                        below.append(child)
            level = below
        raise NotConfigured(f"no {' or '.join(names)} under {self.machine_name}")

    def _value(self, key: str, value: Any) -> None:
        if key in self._roles:
            self._values[key] = value
            if self._settling is None:
                self._settling = self.track.clock.monotonic()
                self._loop.call_later(SETTLE_S, self._update)

    def _update(self) -> None:
        at, self._settling = self._settling, None
        item: ItemState | None = None
        mode: OperationMode | None = None
        program = None
        for key, role in self._roles.items():
            value = self._values.get(key)
            if role == "item":
                item = item_state(self._namespace, value)
            elif role == "mode":
                mode = operation_mode(self._namespace, value)
            elif role == "program" and value is not None:
                program = str(value)[:200]
        tags = {self._tag_of[k]: v for k, v in self._values.items() if k in self._tag_of}
        state, sub = decide(self.settings.tags, tags, item, mode)
        if state is None:
            self.counters["unmapped"] += 1
        self.track.report(Seen(state, sub, program), at=at)
