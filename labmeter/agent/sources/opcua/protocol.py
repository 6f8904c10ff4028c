"""OPC UA source settings and what a value means, without any I/O.

Two ways to read a machine, which can be combined: the OPC 40001-1 state machines
(MachineryItemState and MachineryOperationMode, on servers that implement OPC UA for
Machinery), and configured tags, each a NodeId with a map from its values to states (an
S7-1500's PLC tags). Tags come first, in the order given, so a "program held" tag can refine
a Machinery server's NotExecuting into ``paused``; the first tag whose value is in its map
decides, then the Machinery state machines; with neither, the state is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from labmeter.agent.sources.options import Options
from labmeter.config import Secret
from labmeter.contract import STATES
from labmeter.errors import ConfigError
from labmeter.machinery import (
    ITEM_STATE_IDS,
    OPERATION_MODE_IDS,
    ItemState,
    MachineState,
    OperationMode,
    substate,
)

POLICIES = ("None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
MODES = ("Sign", "SignAndEncrypt")
LOGINS = ("anonymous", "user", "certificate")
MODELS = ("machinery", "tags", "both")
# NodeId strings as OPC UA writes them: ns=3;i=1001, ns=3;s="DB_Machine"."State", i=2258,
# also with nsu=<namespace URI>.
_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$")


@dataclass(frozen=True)
class Tag:
    """A PLC tag or any variable: its NodeId and what its values mean."""

    node_id: str
    name: str  # its name in the substate
    map: dict[str, str]  # str(value) -> state; booleans as "true"/"false"

    def state(self, value: Any) -> str | None:
        return self.map.get(value_key(value))


@dataclass(frozen=True)
class Settings:
    endpoint: str
    model: str
    machine: str | None  # NodeId of the machine object; None: the only one under Machines
    tags: tuple[Tag, ...]
    program_node: str | None
    security_policy: str
    security_mode: str
    certificate: str | None
    private_key: str | None
    server_certificate: str | None
    login: str
    username: str | None
    password: Secret | None = field(repr=False)  # never in a log or a repr
    publish_ms: int = 500
    keepalive_count: int = 10
    timeout_s: float = 12.0
    request_timeout_s: float = 4.0
    reconnect_s: float = 1.0
    reconnect_max_s: float = 60.0

    @property
    def endpoint_shown(self) -> str:
        """The endpoint without any user:password@ in it, for logs and ``agent check``."""
        return re.sub(r"//[^/@]*@", "//", self.endpoint)


def value_key(value: Any) -> str:
    """How a tag's value is written in its map: ``true``/``false``, ``3``, ``3.5``, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _node_id(opts: Options, name: str, value: Any) -> str:
    if not isinstance(value, str) or not _NODE_ID.match(value):
        raise ConfigError(opts.key(name), f"{value!r} is not a NodeId such as ns=3;i=1001")
    return value


def _tags(opts: Options) -> tuple[Tag, ...]:
    raw = opts.raw.get("tags", [])
    if not isinstance(raw, list):
        raise ConfigError(opts.key("tags"), "must be a list of tables ([[agent.options.tags]])")
    out = []
    for i, entry in enumerate(raw):
        sub = Options(entry if isinstance(entry, dict) else {}, opts.key(f"tags[{i}]"))
        if not isinstance(entry, dict):
            raise ConfigError(sub.prefix, "must be a table with node_id and map")
        sub.reject_unknown({"node_id", "name", "map"})
        node = _node_id(sub, "node_id", entry.get("node_id"))
        mapping = sub.table("map")
        if not mapping:
            raise ConfigError(
                sub.key("map"), 'is required: value -> state, e.g. {"true" = "alarm"}'
            )
        for value, state in mapping.items():
            if state not in STATES:
                raise ConfigError(sub.key(f"map.{value}"), f"{state!r} is not one of {STATES}")
        default_name = node.split(";", 1)[-1].split("=", 1)[-1]
        out.append(Tag(node, sub.string("name", default_name), dict(mapping)))
    return tuple(out)


def parse(raw: dict[str, Any]) -> Settings:
    """The ``[agent.options]`` of an opcua source; every error names its key."""
    opts = Options(raw)
    opts.reject_unknown(
        {"endpoint", "model", "machine", "tags", "program_node", "security_policy",
         "security_mode", "certificate", "private_key", "server_certificate", "login",
         "username", "password", "publish_ms", "keepalive_count", "timeout_s",
         "request_timeout_s", "reconnect_s", "reconnect_max_s"}
    )  # fmt: skip
    endpoint = opts.string("endpoint")
    if not endpoint.startswith("opc.tcp://"):
        raise ConfigError(opts.key("endpoint"), f"{endpoint!r} is not opc.tcp://host:port")
    tags = _tags(opts)
    model = opts.string("model", "both" if tags else "machinery", choices=MODELS)
    if model != "machinery" and not tags:
        raise ConfigError(opts.key("tags"), f'model = "{model}" needs [[agent.options.tags]]')
    policy = opts.string("security_policy", "None", choices=POLICIES)
    mode = opts.string("security_mode", "SignAndEncrypt", choices=MODES)
    login = opts.string("login", "user" if "username" in raw else "anonymous", choices=LOGINS)
    certificate = opts.string("certificate") if "certificate" in raw else None
    private_key = opts.string("private_key") if "private_key" in raw else None
    if (policy != "None" or login == "certificate") and not (certificate and private_key):
        raise ConfigError(
            opts.key("certificate"),
            "a security policy or a certificate login needs certificate and private_key "
            "(this agent's own, trusted by the server)",
        )
    username: str | None = None
    password: Secret | None = None
    if login == "user":
        username = opts.string("username")
        password = Secret(opts.string("password"))
    publish_ms = opts.integer("publish_ms", 500, minimum=50, maximum=60_000)
    keepalive = opts.integer("keepalive_count", 10, minimum=1, maximum=1000)
    # Silent longer than two keep-alive periods plus the request timeout: unobserved.
    request_timeout = opts.number("request_timeout_s", 4.0, minimum=0.1)
    default_timeout = 2 * publish_ms * keepalive / 1000 + request_timeout
    return Settings(
        endpoint=endpoint,
        model=model,
        machine=_node_id(opts, "machine", raw["machine"]) if "machine" in raw else None,
        tags=tags,
        program_node=(
            _node_id(opts, "program_node", raw["program_node"]) if "program_node" in raw else None
        ),
        security_policy=policy,
        security_mode=mode,
        certificate=certificate,
        private_key=private_key,
        server_certificate=(
            opts.string("server_certificate") if "server_certificate" in raw else None
        ),
        login=login,
        username=username,
        password=password,
        publish_ms=publish_ms,
        keepalive_count=keepalive,
        timeout_s=opts.number("timeout_s", default_timeout, minimum=0.1),
        request_timeout_s=request_timeout,
        reconnect_s=opts.number("reconnect_s", 1.0, minimum=0.01),
        reconnect_max_s=opts.number("reconnect_max_s", 60.0, minimum=0.01),
    )


def item_state(namespace: int, node_id: Any) -> ItemState | None:
    """MachineryItemState's CurrentState.Id -> its state; None for a NodeId it is not."""
    ns, ident = getattr(node_id, "NamespaceIndex", None), getattr(node_id, "Identifier", None)
    return ITEM_STATE_IDS.get(ident) if ns == namespace and isinstance(ident, int) else None


def operation_mode(namespace: int, node_id: Any) -> OperationMode | None:
    ns, ident = getattr(node_id, "NamespaceIndex", None), getattr(node_id, "Identifier", None)
    return OPERATION_MODE_IDS.get(ident) if ns == namespace and isinstance(ident, int) else None


def decide(
    tags: tuple[Tag, ...],
    values: dict[str, Any],
    item: ItemState | None,
    mode: OperationMode | None,
) -> tuple[str | None, str | None]:
    """(state, substate) from the tags' values (by NodeId) and the Machinery state machines."""
    for tag in tags:
        if tag.node_id in values:
            state = tag.state(values[tag.node_id])
            if state is not None:
                return state, substate(f"{tag.name}:{value_key(values[tag.node_id])}")
    if item is None:
        return None, None
    mode = mode or OperationMode.NONE
    return MachineState(item, mode).state, substate(item.value, mode.value)


def node_id(identifier: int | str, namespace: int) -> Any:
    """An asyncua ``ua.NodeId`` (its constructor's hints want its own integer types)."""
    from asyncua import ua

    return ua.NodeId(identifier, namespace)  # type: ignore[arg-type]
