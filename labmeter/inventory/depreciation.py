"""What an asset costs over a window: straight-line depreciation from its *collaudo*, plus its
yearly running and licence costs.

Depreciation follows the Italian practice, pro rata temporis: each calendar year (of the
inventory's zone) carries cost ÷ useful life, an equal share on each of its days, from the
*collaudo* (the asset enters service) until the same date ``life`` years later, when the
whole cost has been counted. Yearly running and licence costs are spread the same way from the
*collaudo* on, with no end. Both are sums over time, so a window cut into pieces (a year into
months) costs exactly what the whole window costs; nothing is counted before the *collaudo*,
and an asset without one has no depreciation counted (the report says so).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from labmeter.schema import Calendar

# Years of useful life per kind when the inventory does not say: the Italian tax
# coefficients (DM 31/12/1988) read as years — electronic office machines and computers 20 %,
# general machinery and plant 10 %, specific plant 12.5 %, software 3 years.
DEFAULT_USEFUL_LIFE: Final[dict[str, float]] = {
    "pc": 5,
    "printer3d": 5,
    "laser": 8,
    "cnc": 10,
    "software": 3,
}
DEFAULT_LIFE_OTHER: Final = 8.0  # any other kind


def _ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), tz).timestamp() * 1000)


def anniversary(day: date, years: float) -> date:
    """``day`` plus whole years (29 February: 28 February), plus the fraction in days."""
    whole = int(years)
    try:
        out = day.replace(year=day.year + whole)
    except ValueError:
        out = day.replace(year=day.year + whole, day=28)
    return out + timedelta(days=round((years - whole) * 365))


def accrued(per_year: float, since: date, until: date | None, start_ms: int, end_ms: int,
            tz: ZoneInfo) -> float:  # fmt: skip
    """``per_year`` euro a calendar year, each of its local days carrying an equal share (a
    part of a day its share of the day's time), counted over ``[start_ms, end_ms)`` within
    ``[since, until)`` (local midnights; no ``until``: on). By days, as by hand: 184 days of
    2025 carry 184/365 of the year's amount, the 25-hour autumn day no more than another."""
    if per_year == 0:
        return 0.0
    cal = Calendar(tz.key)
    a = max(start_ms, _ms(since, tz))
    b = min(end_ms, _ms(until, tz)) if until is not None else end_ms
    if b <= a:
        return 0.0

    def part_of_day(day: int, x: int, y: int) -> float:
        year = cal.date_of(day).year
        return per_year / _days(year) * (y - x) / (cal.next_day(day) - day)

    total = 0.0
    head = cal.day_of(a)
    if head < a:  # a part of the first day
        stop = min(b, cal.next_day(head))
        total += part_of_day(head, a, stop)
        a = stop
    if a >= b:
        return total
    tail = cal.day_of(b)
    first, last = cal.date_of(a), cal.date_of(tail)  # whole days [first, last)
    year = first.year
    while first < last:
        upto = min(last, date(year + 1, 1, 1))
        total += per_year * (upto - first).days / _days(year)
        first, year = upto, year + 1
    if tail < b:
        total += part_of_day(tail, tail, b)
    return total


def _days(year: int) -> int:
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days


def depreciation(cost: float, life_years: float, collaudo: date, start_ms: int, end_ms: int,
                 tz: ZoneInfo) -> float:  # fmt: skip
    """The share of ``cost`` that ``[start_ms, end_ms)`` carries."""
    return accrued(
        cost / life_years, collaudo, anniversary(collaudo, life_years), start_ms, end_ms, tz
    )
