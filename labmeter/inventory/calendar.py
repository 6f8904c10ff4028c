"""Italian public holidays, on which labs are closed unless their inventory says otherwise.

From the maintained ``holidays`` package rather than our own table: Italy's calendar changes
by law (4 October, St Francis, is a national holiday again from 2026, law 151/2025), and the
package follows those changes and knows each province's patron saint. A site gives its
province (``FI`` for Florence: San Giovanni, 24 June) or, for a town that is not a provincial
capital, its own ``patron_day``.
"""

from __future__ import annotations

from datetime import date
from functools import cache, lru_cache
from typing import Any

# ``holidays`` is imported when first needed: its countries package loads every country's
# calendar (some 15 MB), which a collector worker that never asks for one should not hold.


def _italy() -> Any:
    from holidays.countries.italy import Italy

    return Italy


@cache
def provinces() -> frozenset[str]:
    """The provinces (and metropolitan cities) whose patron saint the package knows."""
    return frozenset(_italy().subdivisions)


@lru_cache(maxsize=256)
def public_holidays(
    year: int, province: str = "", patron: tuple[int, int] | None = None
) -> frozenset[date]:
    """National holidays of ``year`` (Easter Sunday and Monday included), the province's
    patron saint when ``province`` is given, and the site's own ``patron`` day."""
    # holidays' country classes build their signature dynamically: untyped to mypy.
    days = set(_italy()(years=year, subdiv=province or None))
    if patron is not None:
        days.add(date(year, *patron))
    return frozenset(days)
