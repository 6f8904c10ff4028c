"""A machine's scripted hour, the same for every networked emulator: each plays it in its own
protocol, and the script itself is the truth a test compares the agent's seconds with.

Steps are labmeter states, or ``disconnect``/``reconnect`` (the gate cut and mended: the
machine goes on with its job meanwhile, and nobody sees it).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

from labmeter.simulators.devices.network import ScaledClock

Step = tuple[float, str]  # (script second, state | "disconnect" | "reconnect")

# An hour with a job, a pause, an alarm, setup, and a disconnect in the middle of a job with a
# reconnect while the job still runs.
HOUR: tuple[Step, ...] = (
    (0, "idle"),
    (300, "setup"),
    (780, "in_use"),
    (1380, "paused"),
    (1560, "in_use"),
    (1920, "alarm"),
    (2100, "idle"),
    (2280, "setup"),
    (2460, "in_use"),
    (2760, "disconnect"),
    (3000, "reconnect"),
    (3240, "idle"),
    (3420, "off"),
)
HOUR_S = 3600


def truth(steps: Sequence[Step], end_s: float, start_s: float = 0.0) -> dict[str, float]:
    """Seconds per state from ``start_s`` to ``end_s``; ``unknown`` while disconnected."""
    out: dict[str, float] = defaultdict(float)
    state, connected, t = "unknown", True, start_s
    for at, what in [*steps, (end_s, "end")]:
        at = min(max(at, start_s), end_s)
        out[state if connected else "unknown"] += at - t
        t = at
        if what == "disconnect":
            connected = False
        elif what == "reconnect":
            connected = True
        elif what != "end":
            state = what
    return {k: v for k, v in out.items() if v}


def play(
    clock: ScaledClock,
    steps: Sequence[Step],
    apply: Callable[[str], None],
    stop: threading.Event | None = None,
    end_s: float | None = None,
) -> None:
    """Run each step at its script second (``apply`` gets the step), then wait for ``end_s``."""
    stop = stop or threading.Event()
    for at, what in steps:
        if clock.wait_until(at, stop):
            return
        apply(what)
    if end_s is not None:
        clock.wait_until(end_s, stop)
