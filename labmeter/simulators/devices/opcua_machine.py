"""A machine with an OPC UA server (asyncua) that implements OPC 40001-1 and has PLC tags.

The address space holds what the agent's opcua source reads on a real machine:
``Objects/Machines/Mill-1/MachineryBuildingBlocks/{MachineryItemState, MachineryOperationMode}``
with ``CurrentState`` and its ``Id`` (the NodeIds of the Machinery nodeset's state objects,
namespace ``http://opcfoundation.org/UA/Machinery/``), and S7-1500-style tags in a
namespace of their own: ``"DB_Machine"."Mode"`` (0 off, 1 idle, 2 running, 3 held, 4
fault, 5 setup), ``"DB_Machine"."Held"`` and ``"DB_Machine"."Program"``. It sits behind a
``Gate`` so a test can pull the cable mid-job.
"""

from __future__ import annotations

from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager

from labmeter.agent.sources.opcua.protocol import node_id
from labmeter.machinery import (
    ITEM_STATE_IDS,
    MACHINES_FOLDER,
    NAMESPACE,
    OPERATION_MODE_IDS,
    SHOWN_AS,
    ItemState,
    OperationMode,
)
from labmeter.simulators.devices.network import Gate, LoopThread, free_port

PLC_NAMESPACE = "http://www.siemens.com/simatic-s7-opcua"
OWN_NAMESPACE = "urn:labmeter:simulators:opcua-machine"
DI_NAMESPACE = "http://opcfoundation.org/UA/DI/"
MODE_TAG = '"DB_Machine"."Mode"'
HELD_TAG = '"DB_Machine"."Held"'
PROGRAM_TAG = '"DB_Machine"."Program"'
# A labmeter state as this machine shows it: OPC 40001-1 as ``machinery.SHOWN_AS`` says, and
# its PLC's Mode tag.
PLC_MODES = {"off": 0, "idle": 1, "in_use": 2, "paused": 3, "alarm": 4, "setup": 5}
SHOWS: dict[str, tuple[ItemState, OperationMode, bool, int]] = {
    state: (shown.item, shown.mode, shown.held, PLC_MODES[state])
    for state, shown in SHOWN_AS.items()
}
# The PLC's Mode tag as an agent config maps it (docs/agent.md, the opcua sample.toml).
MODE_MAP = {str(plc): state for state, (_, _, _, plc) in SHOWS.items()}


class _Users(UserManager):
    """Username and password as the config of a real server would hold them."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:  # fmt: skip
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaMachine:
    def __init__(self, users: dict[str, str] | None = None, port: int | None = None) -> None:
        self.users = users
        self.loop = LoopThread("sim-opcua")
        self._backend = free_port()
        self.gate = Gate(self.loop, self._backend, port)
        self.server: Server | None = None
        self.nodes: dict[str, Node] = {}
        self.ns: dict[str, int] = {}
        self.state = "idle"
        self.program = ""

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.gate.port}/labmeter/"

    def tag(self, name: str) -> str:
        """A PLC tag's NodeId as the agent's config names it."""
        return f"ns={self.ns['plc']};s={name}"

    def start(self) -> OpcUaMachine:
        self.loop.call(self._start())
        self.gate.open()
        return self

    def stop(self) -> None:
        self.gate.cut()
        if self.server is not None:
            self.loop.call(self.server.stop())
        self.loop.close()

    def set_state(self, state: str, program: str | None = None) -> None:
        """Show a labmeter state the way this machine would (``SHOWS``)."""
        self.loop.call(self._show(state, program))

    def apply(self, step: str) -> None:
        """One step of a script (``simulators/devices/script.py``)."""
        if step == "disconnect":
            self.gate.cut()
        elif step == "reconnect":
            self.gate.mend()
        else:
            self.set_state(step, program="O1234 BRACKET" if step == "in_use" else None)

    # --- on the loop ---------------------------------------------------------------------

    async def _start(self) -> None:
        server = Server(user_manager=_Users(self.users) if self.users else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self._backend}/labmeter/")
        server.set_server_name("labmeter simulated mill")
        if self.users:
            server.set_security_IDs(["Username"])
        machinery = await server.register_namespace(NAMESPACE)
        di = await server.register_namespace(DI_NAMESPACE)
        plc = await server.register_namespace(PLC_NAMESPACE)
        own = await server.register_namespace(OWN_NAMESPACE)
        self.ns = {"machinery": machinery, "plc": plc, "own": own}
        objects = server.nodes.objects
        # The Machinery nodeset's state objects, at their own NodeIds (they live in its types).
        types = await objects.add_folder(node_id("StateObjects", own), f"{own}:StateObjects")
        for ident, item in ITEM_STATE_IDS.items():
            await types.add_object(node_id(ident, machinery), f"{machinery}:{item.value}")
        for ident, mode in OPERATION_MODE_IDS.items():
            await types.add_object(node_id(ident, machinery), f"{machinery}:{mode.value}")
        machines = await objects.add_folder(
            node_id(MACHINES_FOLDER, machinery), f"{machinery}:Machines"
        )
        mill = await machines.add_object(node_id("Mill-1", own), f"{own}:Mill-1")
        blocks = await mill.add_folder(
            node_id("Mill-1.Blocks", own), f"{di}:MachineryBuildingBlocks"
        )
        for key, name, first in (
            ("item", "MachineryItemState", node_id(5007, machinery)),
            ("mode", "MachineryOperationMode", node_id(5024, machinery)),
        ):
            machine = await blocks.add_object(node_id(f"Mill-1.{name}", own), f"{machinery}:{name}")
            current = await machine.add_variable(
                node_id(f"Mill-1.{name}.CurrentState", own), "0:CurrentState",
                ua.LocalizedText(""),
            )  # fmt: skip
            self.nodes[f"{key}_text"] = current
            self.nodes[key] = await current.add_property(
                node_id(f"Mill-1.{name}.CurrentState.Id", own), "0:Id",
                ua.Variant(first, ua.VariantType.NodeId),
            )  # fmt: skip
        db = await objects.add_object(node_id("DataBlocksGlobal", plc), f"{plc}:DataBlocksGlobal")
        for tag, value, kind in (
            (MODE_TAG, 1, ua.VariantType.Int16),
            (HELD_TAG, False, ua.VariantType.Boolean),
            (PROGRAM_TAG, "", ua.VariantType.String),
        ):
            self.nodes[tag] = await db.add_variable(
                node_id(tag, plc), f"{plc}:{tag}", ua.Variant(value, kind)
            )
        await server.start()
        self.server = server
        self.machinery_ns = machinery
        await self._show(self.state, None)

    async def _show(self, state: str, program: str | None) -> None:
        item, mode, held, plc = SHOWS[state]
        self.state = state
        ns = self.ns["machinery"]
        item_id = next(i for i, s in ITEM_STATE_IDS.items() if s is item)
        mode_id = next(i for i, m in OPERATION_MODE_IDS.items() if m is mode)
        await self.nodes["item"].write_value(
            ua.Variant(node_id(item_id, ns), ua.VariantType.NodeId)
        )
        await self.nodes["item_text"].write_value(ua.LocalizedText(item.value))
        await self.nodes["mode"].write_value(
            ua.Variant(node_id(mode_id, ns), ua.VariantType.NodeId)
        )
        await self.nodes["mode_text"].write_value(ua.LocalizedText(mode.value))
        await self.nodes[HELD_TAG].write_value(ua.Variant(held, ua.VariantType.Boolean))
        await self.nodes[MODE_TAG].write_value(ua.Variant(plc, ua.VariantType.Int16))
        if program is not None:
            self.program = program
            await self.nodes[PROGRAM_TAG].write_value(ua.Variant(program, ua.VariantType.String))
