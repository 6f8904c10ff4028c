"""Stakeholder category of a session: its login first, then its groups, then the default.

Technicians map a few logins (a guest account, the staff) and whole groups (a school's class
in an LDAP or Active Directory group) in ``[agent.categories]``. Group membership comes from
the OS (``groups(login, domain)`` of the platform module) and is cached for a few minutes: a
lookup may ask a directory server, and the agent asks for the same login every poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

GROUPS_TTL_S = 300.0  # a new group membership shows within 5 minutes


class Categories:
    """Resolves ``[agent.categories]``: names compare case-insensitively (Windows does)."""

    def __init__(
        self,
        table: Mapping[str, str],
        default: str,
        groups_of: Callable[[str, str], list[str]],
        *,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = GROUPS_TTL_S,
    ) -> None:
        # Config order decides between groups: the first listed group the user is in wins.
        self._table = {name.casefold(): category for name, category in table.items()}
        self.default = default
        self._groups_of = groups_of
        self._clock = clock
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def of(self, login: str, domain: str = "") -> str:
        """The category of ``login``: mapped itself, else through its first mapped group."""
        found = self._table.get(login.casefold())
        if found is not None:
            return found
        groups = self._groups(login, domain)
        for name, category in self._table.items():
            if name in groups:
                return category
        return self.default

    def _groups(self, login: str, domain: str) -> frozenset[str]:
        key, now = (login, domain), self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            names = frozenset(g.casefold() for g in self._groups_of(login, domain))
        except OSError as exc:  # a directory server away: keep what was known, retry later
            log.warning("group lookup failed (%s); categories by login only for now", exc)
            names = cached[1] if cached is not None else frozenset()
        self._cache[key] = (now, names)
        return names
