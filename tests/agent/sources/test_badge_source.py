"""Badge readers on ptys: sessions from swipes, categories from the table, pseudonyms only."""

from pathlib import Path

import pytest

from labmeter.agent.identity import pseudonym
from labmeter.agent.sources import SOURCES
from labmeter.agent.sources.badge.source import BadgeSource
from labmeter.agent.sources.badge.with_badge import WithBadge
from labmeter.config import AgentConfig
from labmeter.contract import encode
from labmeter.errors import ConfigError
from labmeter.simulators.devices.badge import BadgeReaderDevice
from labmeter.simulators.devices.clamp import ClampDevice
from tests.agent.sources.harness import run_against

SECRET = "a-site-secret-for-tests"
SCHOOL, VISITOR = "0415AB12CD", "1A2B3C4D5E"
CLAMP = {"off_below_a": 0.3, "run_above_a": 4.0, "timeout_s": 0.3, "reconnect_s": 0.1}


@pytest.mark.parametrize("reader", ["rdm6300", "id12la"])
def test_badges_open_switch_and_close_sessions_on_a_machine(tmp_path: Path, reader: str) -> None:
    table = tmp_path / "badges.csv"
    table.write_text(f"badge,category\n# staff and visitors\n{SCHOOL.lower()},school\n")
    badges = BadgeReaderDevice(tmp_path / "ttyBADGE", reader=reader).start()
    clamp = ClampDevice(tmp_path / "ttyCLAMP").start()
    config = AgentConfig(
        pseudonym_secret=SECRET,
        source="with_badge",
        options={"machine": "clamp", "port": clamp.path, **CLAMP,
                 "badge": {"port": badges.path, "debounce_s": 0.3, "reconnect_s": 0.1,
                           "badge_table": str(table)}},
    )  # fmt: skip
    src = SOURCES["with_badge"](config)
    assert isinstance(src, WithBadge)
    try:
        timeline = [
            (0.2, lambda: badges.present(SCHOOL)),  # held 0.35 s: one swipe, not four
            (0.5, lambda: clamp.set_state("in_use")),
            (0.9, badges.bad_frames),
            (1.1, lambda: badges.present(VISITOR)),  # another badge: switch
            (1.6, lambda: clamp.set_state("idle")),
            (1.9, lambda: badges.present(VISITOR)),  # same badge again: close
            (2.4, lambda: None),
        ]
        out = run_against(src, badges, timeline, poll_s=0.05, settle_s=0.4)
        metrics = src.poll().metrics
    finally:
        src.close()
        badges.stop()
        clamp.stop()
    school, visitor = pseudonym(SECRET, SCHOOL), pseudonym(SECRET, VISITOR)
    assert [(e.type, e.user, e.category) for e in out.events if e.type != "job_end"] == [
        ("badge", school, "school"),
        ("session_start", school, "school"),
        ("job_start", school, "school"),
        ("badge", visitor, "unknown"),
        ("session_end", school, "school"),
        ("session_start", visitor, "unknown"),
        ("badge", visitor, "unknown"),
        ("session_end", visitor, "unknown"),
    ]
    users = [(s.user, s.category) for s in out.samples if s.state_s]
    assert users == [(None, "unknown"), (school, "school"), (visitor, "unknown"), (None, "unknown")]
    in_use_by = {s.user: s.state_s.get("in_use", 0.0) for s in out.samples}
    assert in_use_by[school] == pytest.approx(0.6, abs=0.25)
    assert in_use_by[visitor] == pytest.approx(0.5, abs=0.25)
    assert metrics["badge_bad_checksum"] == 1 and metrics["badge_malformed"] == 2
    assert metrics["badge_repeats"] >= 4
    # Only pseudonyms leave the agent: no raw badge id in anything it would publish.
    published = b"".join(encode(s) for s in out.samples)
    assert SCHOOL.encode() not in published.upper() and VISITOR.encode() not in published.upper()


def test_a_session_left_open_ends_once_the_machine_stands_idle(tmp_path: Path) -> None:
    badges = BadgeReaderDevice(tmp_path / "ttyBADGE").start()
    clamp = ClampDevice(tmp_path / "ttyCLAMP").start()
    config = AgentConfig(
        pseudonym_secret=SECRET,
        options={"machine": "clamp", "port": clamp.path, **CLAMP,
                 "close_session_after_idle_s": 0.6,
                 "badge": {"port": badges.path, "reconnect_s": 0.1}},
    )  # fmt: skip
    src = WithBadge(config)
    try:
        timeline = [
            (0.1, lambda: badges.present(SCHOOL)),
            (0.2, lambda: clamp.set_state("in_use")),
            (0.9, lambda: clamp.set_state("idle")),  # and nobody swipes out
            (2.2, lambda: None),
        ]
        out = run_against(src, badges, timeline, poll_s=0.05, settle_s=0.4)
    finally:
        src.close()
        badges.stop()
        clamp.stop()
    ends = [e for e in out.events if e.type == "session_end"]
    assert [e.data for e in ends] == [{"reason": "idle"}]
    assert [s.user for s in out.samples if s.state_s][-1] is None
    idle_by_user = {s.user: s.state_s.get("idle", 0.0) for s in out.samples}
    assert idle_by_user[pseudonym(SECRET, SCHOOL)] == pytest.approx(0.6, abs=0.3)


def test_alone_a_session_is_use_and_a_lost_reader_is_unknown(tmp_path: Path) -> None:
    badges = BadgeReaderDevice(tmp_path / "ttyBADGE").start()
    src = BadgeSource(
        AgentConfig(
            pseudonym_secret=SECRET,
            options={"port": badges.path, "reconnect_s": 0.1, "badges": {SCHOOL: "school"}},
        )
    )
    try:
        timeline = [
            (0.2, lambda: badges.present(SCHOOL)),
            (0.8, badges.unplug),
            (1.2, badges.replug),
            (1.6, lambda: None),
        ]
        out = run_against(src, badges, timeline, poll_s=0.05, settle_s=0.4)
    finally:
        src.close()
        badges.stop()
    seen = [s for _, s in out.seen]
    assert seen[0] == "idle" and "in_use" in seen and None in seen and seen[-1] == "in_use"
    assert out.measured["in_use"] == pytest.approx(1.0, abs=0.3)


@pytest.mark.parametrize(
    "options,key",
    [
        ({"port": "/dev/null", "badges": {SCHOOL: "pupil"}}, f"agent.options.badges.{SCHOOL}"),
        ({"port": "/dev/null", "badge_table": "/nonexistent.csv"}, "agent.options.badge_table"),
        ({"port": "/dev/null", "reader": "rdm6300"}, "agent.options.reader"),
    ],
)
def test_config_errors_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        BadgeSource(AgentConfig(pseudonym_secret=SECRET, options=options))
    assert err.value.key == key


def test_with_badge_needs_a_machine() -> None:
    with pytest.raises(ConfigError) as err:
        WithBadge(AgentConfig(options={"machine": "badge"}))
    assert err.value.key == "agent.options.machine"
