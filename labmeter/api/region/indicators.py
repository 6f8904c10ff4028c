"""The indicators funding programmes report, per fund and site: distinct users per calendar
year (ERDF's RCR71, from the session pseudonyms, a pseudonym counted once a year whichever lab
of the site it used), participants and outside organisations by category (ESF+), external
in-use hours per 1,000 euros of equipment and the cost of an external hour, the same per
six-monthly window (the PNRR's ReGiS reporting), and per asset its measured use month by month
within its durability period (five years after the final payment, Article 65 of Regulation
(EU) 2021/1060).

A fund's figures are those of its assets: the sessions on its devices, their in-use seconds,
their cost. Pseudonyms are per site (each site's agents have their own secret), so a person
at two sites counts at each, and the region's users are the sites' summed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time

from labmeter.api.bookings import BookingRow
from labmeter.api.costs import AssetCost
from labmeter.api.figures import ratio
from labmeter.api.region.model import Durability, FundSite, Indicators, MonthUse, Semester
from labmeter.api.region.sites import registered_by
from labmeter.api.scope import Every, Member, PeriodAssets, Scope, cut_spans, periods
from labmeter.api.session_counts import SessionCounts
from labmeter.api.usage import Totals, View
from labmeter.contract import EXTERNAL_CATEGORIES
from labmeter.inventory import Equipment
from labmeter.schema import IN_USE, Calendar, DeviceKey

Span = tuple[int, int]
FundKey = tuple[str, str]  # fund, site ("" for every site)


def semesters(cal: Calendar, start_ms: int, end_ms: int) -> list[tuple[str, Span]]:
    """The window cut at 1 January and 1 July (local midnights): each piece and its name."""
    out: list[tuple[str, Span]] = []
    day = cal.date_of(start_ms)
    t = start_ms
    while t < end_ms:
        half = 1 if day.month <= 6 else 2
        nxt = date(day.year, 7, 1) if half == 1 else date(day.year + 1, 1, 1)
        after = min(int(datetime.combine(nxt, time(), cal.zone).timestamp() * 1000), end_ms)
        out.append((f"{day.year}-S{half}", (t, after)))
        t, day = after, nxt
    return out


def merged(counts: Sequence[SessionCounts]) -> SessionCounts:
    """Several spans' sessions as one: counts summed, pseudonyms united."""
    out = SessionCounts()
    for found in counts:
        out.merge(found)
    return out


def external_seconds(scope: Scope) -> dict[tuple[int, DeviceKey], float]:
    """In-use seconds of outside categories per month (its start) and asset: read per device
    and category, outside categories only, cut where an identity changes hands."""
    inv = scope.inventory
    if inv is None:
        return {}
    months = periods(scope, Every.month)
    parts = cut_spans(months, inv.edges(scope.start_ms, scope.end_ms))
    starts = [a for a, _ in months]
    found = scope.reader.facts(
        scope.plan, parts, View.fact, scope.unregistered(), (IN_USE,), EXTERNAL_CATEGORIES
    )
    out: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    steady: dict[DeviceKey, Equipment | None] = {}  # identities only ever one asset's
    for (at, (site, lab, device, _k, _c)), t in found.items():
        key = (site, lab, device)
        if key in steady:
            owner = steady[key]
        else:
            owner = inv.owner(key, at)
            if len(inv.tenures.get(key, ())) <= 1:
                steady[key] = owner
        month = starts[bisect_right(starts, at) - 1]
        if owner is not None:
            out[(month, owner.key)] += t.in_use_s
    return dict(out)


def indicators(
    scope: Scope,
    months: list[PeriodAssets],
    external: Mapping[tuple[int, DeviceKey], float],
    pieces: list[tuple[str, Span]],
    sessions: list[SessionCounts],
    costs: Mapping[DeviceKey, AssetCost],
    piece_costs: list[Mapping[DeviceKey, AssetCost]],
    bookings: list[BookingRow] | None,
    durability_years: int,
) -> Indicators:
    inv = scope.inventory
    if inv is None:
        return Indicators(funds=[], semesters=[], durability=[])
    assets = {k: inv.equipment[k] for k in scope.registered()}

    def fund_of(key: DeviceKey) -> str:
        eq = assets.get(key)
        return eq.funding.fund or "-" if eq is not None else "-"

    groups: dict[FundKey, list[DeviceKey]] = defaultdict(list)  # fund "": every fund
    for key in assets:
        for fund in (fund_of(key), ""):
            for site in (key[0], ""):
                groups[(fund, site)].append(key)

    # Per asset, its in-use and external seconds month by month, summed once per span below.
    used: dict[DeviceKey, list[tuple[int, float, float]]] = defaultdict(list)
    for month in months:
        for key, t in month.facts.items():
            used[key].append((month.start_ms, t.in_use_s, external.get((month.start_ms, key), 0.0)))

    def use_in(span: Span, keys: list[DeviceKey]) -> tuple[float, float]:
        """In-use and external seconds of ``keys`` over the months within ``span``."""
        in_use = external_s = 0.0
        for key in keys:
            for at, seconds, outside in used.get(key, ()):
                if span[0] <= at < span[1]:
                    in_use += seconds
                    external_s += outside
        return in_use, external_s

    lookup = registered_by(scope, lambda k: k)  # a session's device -> its asset, or None

    def per_group(found: SessionCounts) -> dict[FundKey, tuple[int, set[str]]]:
        """Sessions and pseudonyms per fund and site, and per site of every fund: one pass."""
        sessions: dict[FundKey, int] = defaultdict(int)
        users: dict[FundKey, set[str]] = defaultdict(set)
        for key, n in found.sessions.items():
            asset = lookup(key)
            if asset is None:
                continue
            for group in ((fund_of(asset), asset[0]), ("", asset[0])):
                sessions[group] += n
                users[group] |= found.users[key]
        return {g: (n, users[g]) for g, n in sessions.items()}

    def counted(parts: list[dict[FundKey, tuple[int, set[str]]]]) -> dict[FundKey, tuple[int, int]]:
        """Parts of the window taken together (their pseudonyms united), and the sites summed
        per fund (pseudonyms are per site: their sum is their union)."""
        out: dict[FundKey, tuple[int, int]] = {}
        for group in {g for part in parts for g in part}:
            found = [part[group] for part in parts if group in part]
            out[group] = (sum(n for n, _ in found), len(set().union(*(u for _, u in found))))
        for (fund, _site), (n, users) in list(out.items()):
            n0, users0 = out.get((fund, ""), (0, 0))
            out[(fund, "")] = (n0 + n, users0 + users)
        return out

    grouped = [per_group(found) for found in sessions]
    years: dict[str, list[dict[FundKey, tuple[int, set[str]]]]] = defaultdict(list)
    for (name, _span), part in zip(pieces, grouped, strict=True):
        years[name[:4]].append(part)
    per_year = {year: counted(parts) for year, parts in sorted(years.items())}
    window = counted(grouped)
    reached = _organisations(scope, bookings, fund_of) if bookings is not None else None
    funds = []
    for (fund, site), keys in sorted(groups.items(), key=_fund_order):
        in_use, external_s = use_in((scope.start_ms, scope.end_ms), keys)
        cost = sum(assets[k].cost or 0.0 for k in keys)
        spent = sum(costs[k]["total_eur"] for k in keys if k in costs)
        funds.append(
            FundSite(
                fund=fund,
                site=site,
                assets=len(keys),
                cost=cost,
                users_per_year={
                    y: found.get((fund, site), (0, 0))[1] for y, found in per_year.items()
                },
                users=window.get((fund, site), (0, 0))[1],
                sessions=window.get((fund, site), (0, 0))[0],
                in_use_s=in_use,
                external_s=external_s,
                external_per_1000_eur=ratio(external_s / 3600, cost / 1000),
                cost_eur=spent,
                cost_per_external_hour=ratio(spent, external_s / 3600),
                organisations=None if reached is None else _per_category(reached, fund, site),
            )
        )
    halves = []
    for ((name, span), part), spent_then in zip(
        zip(pieces, grouped, strict=True), piece_costs, strict=True
    ):
        in_piece = counted([part])
        for (fund, site), keys in sorted(groups.items(), key=_fund_order):
            in_use, external_s = use_in(span, keys)
            n, users = in_piece.get((fund, site), (0, 0))
            halves.append(
                Semester(
                    fund=fund,
                    site=site,
                    semester=name,
                    start_ms=span[0],
                    end_ms=span[1],
                    users=users,
                    sessions=n,
                    in_use_s=in_use,
                    external_s=external_s,
                    quota_esterna=ratio(external_s, in_use),
                    cost_eur=sum(spent_then[k]["total_eur"] for k in keys if k in spent_then),
                )
            )
    return Indicators(
        funds=funds,
        semesters=halves,
        durability=durability(scope, months, assets, durability_years),
    )


def _organisations(
    scope: Scope, bookings: list[BookingRow], fund_of: Callable[[DeviceKey], str]
) -> dict[tuple[str, str, str], set[str]]:
    """Outside organisations that came, per (fund, site, category): a booking, not a no-show,
    of a device of the fund (a lab booking books every device of its lab)."""
    inv = scope.inventory
    assert inv is not None
    out: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in bookings:
        if r["no_show"] or r["category"] not in EXTERNAL_CATEGORIES:
            continue
        for d in r["devices"]:
            owner = inv.owner((r["site"], r["lab"], d), r["start_ms"])
            if owner is not None:
                for fund in (fund_of(owner.key), ""):
                    for site in (r["site"], ""):
                        out[(fund, site, r["category"])].add(r["organisation"])
    return out


def _fund_order(group: tuple[FundKey, list[DeviceKey]]) -> tuple[bool, str, bool, str]:
    """Funds by name, every fund last; in each, sites by name, the region last."""
    (fund, site), _keys = group
    return fund == "", fund, site == "", site


def _per_category(
    reached: dict[tuple[str, str, str], set[str]], fund: str, site: str
) -> dict[str, int]:
    return {c: len(reached.get((fund, site, c), ())) for c in EXTERNAL_CATEGORIES}


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def durability(
    scope: Scope, months: list[PeriodAssets], assets: Mapping[DeviceKey, Equipment], years: int
) -> list[Durability]:
    """Each asset's months of the window within its durability period: from its *collaudo*
    (or its purchase) until ``years`` (or the asset's own ``durability_years``) after its final
    payment (without one: after the *collaudo*)."""
    cal = scope.plan.calendar
    members: dict[DeviceKey, list[Member]] = defaultdict(list)
    for m in scope.members():
        members[m.asset].append(m)
    out = []
    for key, eq in sorted(assets.items()):
        since = eq.collaudo or eq.purchased
        start = eq.final_payment or eq.collaudo
        span = eq.durability_years or years  # the grant's own period, else the rule's
        until = _years_after(start, span) if start is not None else None
        a = _ms(cal, since) if since is not None else None
        b = _ms(cal, until) if until is not None else None
        series = []
        tenures = [m.tenure for m in members.get(key, ())]
        for month in months:
            if (a is not None and month.end_ms <= a) or (b is not None and month.start_ms >= b):
                continue
            t = month.facts.get(key, Totals())
            whole = (month.start_ms, month.end_ms)
            if len(tenures) == 1 and tenures[0] is not None and tenures[0].clip(*whole) == whole:
                available = scope.lab_available_s(key[0], key[1], *whole)  # there all month
            else:
                available = scope.available_s(key, *whole) or 0.0
            series.append(
                MonthUse(
                    start_ms=month.start_ms,
                    in_use_s=t.in_use_s,
                    in_use_open_s=t.seconds["in_use_open_s"],
                    available_s=available,
                    utilisation=ratio(t.seconds["in_use_open_s"], available),
                )
            )
        out.append(
            Durability(
                site=key[0],
                lab=key[1],
                device=key[2],
                kind=eq.kind,
                fund=eq.funding.fund,
                cup=eq.funding.cup,
                collaudo=eq.collaudo,
                final_payment=eq.final_payment,
                durability_until=until,
                months=series,
            )
        )
    return out


def _ms(cal: Calendar, day: date) -> int:
    return int(datetime.combine(day, time(), cal.zone).timestamp() * 1000)
