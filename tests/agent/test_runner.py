"""The runner's accounting with injected clocks: suspend is unknown time, seq persists."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from labmeter.agent.backfill import Filled, Outage
from labmeter.agent.meter import Reading
from labmeter.agent.runner import Agent
from labmeter.config import AgentConfig, Config, MqttConfig
from labmeter.localstack import free_port


class Steady:
    def poll(self) -> Reading:
        return Reading("in_use", category="school")

    def close(self) -> None:
        return None


T0 = int(time.time()) // 60 * 60_000 - 3600_000  # a minute boundary an hour ago


def offline_agent(db: Path) -> Agent:
    """An agent whose broker is unreachable: everything stays in its queue to be read back."""
    return Agent(
        Config(
            mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}"),
            agent=AgentConfig(
                site="s",
                lab="l",
                device="d",
                interval_s=60,
                poll_s=1.0,
                pseudonym_secret="a-test-secret-of-enough-length",
                queue_path=str(db),
            ),
        ),
        Steady(),
        clocks=(T0, 0),
    )


def queued(agent: Agent, channel: str) -> list[dict[str, object]]:
    return [orjson.loads(r.payload) for r in agent.queue.after(0, 10_000) if r.channel == channel]


def test_suspend_between_polls_is_unknown_time(tmp_path: Path) -> None:
    agent = offline_agent(tmp_path / "q.db")
    t0 = T0
    for s in range(1, 20):  # awake 20 s
        agent.tick(wall=t0 + s * 1000, mono=s * 1000)
    # Suspended for 30 minutes: the wall clock jumps, the monotonic clock does not.
    resume = t0 + 19_000 + 1_800_000
    for s in range(0, 120):
        agent.tick(wall=resume + s * 1000, mono=19_000 + 500 + s * 1000)
    samples = queued(agent, "sample")
    by_ts = {int(str(s["ts"])): s["state_s"] for s in samples}
    # Before the first poll (0..1 s) nothing was seen: a short sample of unknown time.
    assert by_ts[t0 + 1000] == {}
    # Polls at 1..19 s; the last reading is trusted for the 0.5 s the machine was still awake;
    # the unobserved time has no owner, so it starts a sample of its own.
    assert by_ts[t0 + 19_500] == {"in_use": 18.5}
    for minute in range(1, 30):
        assert by_ts[t0 + minute * 60_000] == {}  # asleep: in no state, never idle
    assert [s["seq"] for s in samples] == list(range(len(samples)))
    agent.publisher.close(timeout=0)
    agent.queue.close()


def test_seq_and_event_seq_go_on_after_a_restart(tmp_path: Path) -> None:
    first = offline_agent(tmp_path / "q.db")
    t0 = T0
    for s in range(1, 181):
        first.tick(wall=t0 + s * 1000, mono=s * 1000)
    made = first.meter.seq
    first.publisher.close(timeout=0)
    first.queue.close()
    assert made == 4  # the unknown first second (see above), then three minutes

    second = offline_agent(tmp_path / "q.db")
    assert second.meter.seq == made
    events = queued(second, "event")
    assert [(e["type"], e["seq"]) for e in events] == [("agent_start", 0), ("agent_start", 1)]
    assert [e["data"]["queued"] for e in events] == [0, 5]  # type: ignore[index]
    second.publisher.close(timeout=0)
    second.queue.close()


class Historian:
    """A source with a job history: it is told the agent's outage and answers from it."""

    def __init__(self) -> None:
        self.told: list[Outage] = []

    def poll(self) -> Reading:
        return Reading("idle")

    def close(self) -> None:
        return None

    def fill_outage(self, outage: Outage) -> None:
        self.told.append(outage)

    def drain_filled(self) -> tuple[Outage, list[Filled]] | None:
        if not self.told:
            return None
        outage = self.told.pop()
        return outage, [Filled(outage.start_ms + 30_000, outage.start_ms + 150_000, "in_use")]


def test_an_outage_is_told_to_a_source_with_history_and_filled_marked(tmp_path: Path) -> None:
    first = offline_agent(tmp_path / "q.db")
    for s in range(1, 121):
        first.tick(wall=T0 + s * 1000, mono=s * 1000)
    first.stop(drain_timeout=0, wall=T0 + 120_500)  # the last sample ends at 120.5 s
    source = Historian()
    config = first.config
    second = Agent(config, source, clocks=(T0 + 600_000, 0))
    assert source.told == [Outage(T0 + 120_500, T0 + 600_000)]
    second.tick(wall=T0 + 601_000, mono=1000)
    samples = [s for s in queued(second, "sample") if "filled_s" in s.get("metrics", {})]
    assert [(s["ts"] - T0, s["state_s"], s["metrics"]) for s in samples] == [
        (180_000, {"in_use": 29.5}, {"filled_s": 29.5}),
        (240_000, {"in_use": 60.0}, {"filled_s": 60.0}),
        (300_000, {"in_use": 30.5}, {"filled_s": 30.5}),  # cut at the boundary, as live
    ]
    seqs = [s["seq"] for s in queued(second, "sample")]
    assert sorted(seqs) == list(range(len(seqs)))  # numbered on with the live samples
    second.publisher.close(timeout=0)
    second.queue.close()
