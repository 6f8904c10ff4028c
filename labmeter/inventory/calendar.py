"""Italian public holidays, on which labs are closed unless their inventory says otherwise.

From the maintained ``holidays`` package rather than our own table: Italy's calendar changes
by law (4 October, St Francis, is a national holiday again from 2026, law 151/2025), and the
package follows those changes and knows each province's patron saint. A site gives its
province (``FI`` for Florence: San Giovanni, 24 June) or, for a town that is not a provincial
capital, its own ``patron_day``.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from holidays.countries.italy import Italy

PROVINCES: frozenset[str] = frozenset(Italy.subdivisions)


@lru_cache(maxsize=256)
def public_holidays(
    year: int, province: str = "", patron: tuple[int, int] | None = None
) -> frozenset[date]:
    """National holidays of ``year`` (Easter Sunday and Monday included), the province's
    patron saint when ``province`` is given, and the site's own ``patron`` day."""
    # holidays' country classes build their signature dynamically: untyped to mypy.
    days = set(Italy(years=year, subdiv=province or None))  # type: ignore[no-untyped-call]
    if patron is not None:
        days.add(date(year, *patron))
    return frozenset(days)
