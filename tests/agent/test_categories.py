"""Categories: login first, then groups (the OS's, through the platform module), then default."""

from __future__ import annotations

import getpass
import grp
import os

from labmeter.agent.categories import Categories
from labmeter.agent.platform import Session, linux
from labmeter.agent.sources.pc.source import PcSource
from labmeter.config import AgentConfig
from tests.agent.test_pc import FakePlatform

MEMBERS = {"mrossi": ["mrossi", "docenti"], "gverdi": ["gverdi", "5a-itis", "docenti"]}


def lookup(calls: list[str]) -> object:
    def groups_of(login: str, domain: str) -> list[str]:
        calls.append(login)
        return MEMBERS.get(login, [])

    return groups_of


def test_login_first_then_the_first_listed_group_then_the_default() -> None:
    calls: list[str] = []
    table = {"5A-ITIS": "school", "docenti": "staff", "gverdi": "company"}
    categories = Categories(table, "its_student", lookup(calls))  # type: ignore[arg-type]
    assert categories.of("gverdi") == "company"  # the login itself is mapped
    assert categories.of("mrossi") == "staff"  # through a group
    assert categories.of("nobody") == "its_student"
    assert calls == ["mrossi", "nobody"]  # a mapped login needs no group lookup
    # In two mapped groups: the one listed first in the config wins; names ignore case.
    assert categories.of("GVERDI") == "company"
    ordered = Categories({"Docenti": "staff", "5a-itis": "school"}, "x", lookup([]))  # type: ignore[arg-type]
    assert ordered.of("gverdi") == "staff"
    ordered = Categories({"5a-itis": "school", "Docenti": "staff"}, "x", lookup([]))  # type: ignore[arg-type]
    assert ordered.of("gverdi") == "school"


def test_groups_are_cached_and_a_failed_lookup_keeps_what_was_known() -> None:
    now, calls, fail = [0.0], [], [False]

    def groups_of(login: str, domain: str) -> list[str]:
        calls.append(login)
        if fail[0]:
            raise OSError(1355, "no domain controller of 'scuola' reachable")
        return ["docenti"]

    categories = Categories({"docenti": "staff"}, "unknown", groups_of, clock=lambda: now[0])
    assert categories.of("mrossi", "scuola") == "staff"
    now[0] = 299.0
    assert categories.of("mrossi", "scuola") == "staff" and len(calls) == 1  # cached
    now[0], fail[0] = 301.0, True
    assert categories.of("mrossi", "scuola") == "staff" and len(calls) == 2  # asked, kept


def test_linux_groups_come_from_nss() -> None:
    me = getpass.getuser()
    primary = grp.getgrgid(os.getgid()).gr_name
    assert primary in linux.groups(me)
    assert linux.groups("no-such-login-here") == []


def test_pc_source_resolves_a_real_posix_group() -> None:
    """The PC source with the real Linux lookup: the user running the tests is mapped only
    through their primary group."""
    me = getpass.getuser()
    primary = grp.getgrgid(os.getgid()).gr_name
    cfg = AgentConfig(
        site="s",
        lab="l",
        device="d",
        pseudonym_secret="a-test-secret-of-enough-length",
        categories={primary: "training_agency"},
        default_category="its_student",
    )
    platform = FakePlatform()
    platform.groups = linux.groups  # the OS answers for groups; sessions stay scripted
    platform.found = [Session(me, idle_s=1.0, id="4", display=True)]
    reading = PcSource(cfg, platform).poll()  # type: ignore[arg-type]
    assert (reading.state, reading.category) == ("in_use", "training_agency")
    platform.found = [Session("no-such-login-here", idle_s=1.0, id="5")]
    assert PcSource(cfg, platform).poll().category == "its_student"  # type: ignore[arg-type]
