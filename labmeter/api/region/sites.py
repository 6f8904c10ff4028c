"""The sites side by side: per site and per kind of equipment, the site report's figures with
the same definitions (``api/figures.py``, ``api/session_counts.py``, ``api/costs.py``), and
the rankings, only among the sites whose coverage passes the threshold."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

from labmeter.api import figures
from labmeter.api.costs import AssetCost
from labmeter.api.figures import GroupBy, ratio
from labmeter.api.region.model import KindRow, Ranking, SiteRow, Unranked
from labmeter.api.scope import Member, Scope
from labmeter.api.session_counts import SessionCounts, SessionKey
from labmeter.api.usage import Totals, View
from labmeter.contract import CATEGORIES, EXTERNAL_CATEGORIES
from labmeter.schema import DeviceKey

K = TypeVar("K", bound=Hashable)


def registered_by(
    scope: Scope, group: Callable[[DeviceKey], K | None]
) -> Callable[[SessionKey], K | None]:
    """A session grouping over registered devices only, by the asset a topic identity is
    (looked up once per device: a year's counts hold thousands of keys per device)."""
    assets: dict[tuple[str, str, str], DeviceKey | None] = {}

    def of(key: SessionKey) -> K | None:
        device = (key[0], key[1], key[2])
        if device not in assets:
            assets[device] = scope.asset_key(device) if scope.is_registered(device) else None
        asset = assets[device]
        return None if asset is None else group(asset)

    return of


def site_rows(
    scope: Scope,
    sessions: SessionCounts,
    assets: Mapping[DeviceKey, Totals],
    costs: Mapping[DeviceKey, AssetCost],
    organisations: Mapping[str, set[str]] | None,
) -> tuple[list[SiteRow], SiteRow]:
    """One row per site of the inventory within the filters, and the region's row."""
    inv = scope.inventory
    groups = {r.get("site", ""): r for r in figures.group_rows(scope, GroupBy.site, None)}
    names = {s: (inv.sites[s].name if inv and s in inv.sites else s) for s in groups}
    if inv is not None:
        names |= {s.id: s.name for s in inv.sites.values() if scope.filters.site in (None, s.id)}
    labs: dict[str, int] = defaultdict(int)
    for site, _lab in inv.labs if inv is not None else ():
        labs[site] += 1
    cats: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(CATEGORIES, 0.0))
    for (site, _lab, _d, _k, category), t in scope.facts(View.lab)[0].facts.items():
        cats[site][category] = cats[site].get(category, 0.0) + t.in_use_s
    counted = sessions.by(registered_by(scope, lambda k: k[0]))
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # euro, hours in use
    for key, cost in costs.items():
        for site in (key[0], ""):
            spent[site][0] += cost["total_eur"]
            spent[site][1] += assets.get(key, Totals()).in_use_s / 3600
    rows = []
    for site in sorted(names):
        g = groups.get(site)
        external, share, by_category = _openness(cats.get(site, {}))
        row = SiteRow(
            site=site,
            name=names[site],
            labs=labs.get(site, 0),
            devices=g.get("devices", 0) if g else 0,
            available_s=g["available_s"] if g else None,
            in_use_s=g["in_use_s"] if g else 0.0,
            in_use_open_s=g["in_use_open_s"] if g else 0.0,
            observed_open_s=g["observed_open_s"] if g else 0.0,
            utilisation=g["utilisation"] if g else None,
            coverage=g["coverage"] if g else None,
            ranked=False,
            rank_utilisation=None,
            rank_outside=None,
            external_s=external,
            quota_esterna=share,
            categories=by_category,
            sessions=counted.get(site, (0, 0))[0],
            users=counted.get(site, (0, 0))[1],
            organisations=None if organisations is None else len(organisations.get(site, ())),
            cost_eur=spent[site][0],
            cost_per_hour=ratio(spent[site][0], spent[site][1]),
        )
        rows.append(row)
    total = sessions.by(registered_by(scope, lambda _k: ""))
    return rows, _region(rows, total.get("", (0, 0)), organisations, spent[""])


def _openness(cats: Mapping[str, float]) -> tuple[float, float | None, dict[str, float]]:
    """External in-use seconds, their share, and the seconds of every category."""
    by_category = {c: round(cats.get(c, 0.0), 3) for c in CATEGORIES}
    total = sum(cats.values())
    external = sum(cats.get(c, 0.0) for c in EXTERNAL_CATEGORIES)
    return round(external, 3), ratio(external, total), by_category


def _region(
    rows: list[SiteRow],
    sessions: tuple[int, int],
    organisations: Mapping[str, set[str]] | None,
    spent: list[float],
) -> SiteRow:
    """The sites summed (seconds, costs), their pseudonyms and organisations united."""
    cats = dict.fromkeys(CATEGORIES, 0.0)
    for r in rows:
        for c, v in r["categories"].items():
            cats[c] += v
    available = sum(r["available_s"] or 0.0 for r in rows) if rows else None
    in_use_open = sum(r["in_use_open_s"] for r in rows)
    observed_open = sum(r["observed_open_s"] for r in rows)
    reached = set().union(*organisations.values()) if organisations else set()
    external, share, by_category = _openness(cats)
    return SiteRow(
        site="",
        name="",
        labs=sum(r["labs"] for r in rows),
        devices=sum(r["devices"] for r in rows),
        available_s=available,
        in_use_s=sum(r["in_use_s"] for r in rows),
        in_use_open_s=in_use_open,
        observed_open_s=observed_open,
        utilisation=ratio(in_use_open, available),
        coverage=ratio(observed_open, available),
        ranked=False,
        rank_utilisation=None,
        rank_outside=None,
        external_s=external,
        quota_esterna=share,
        categories=by_category,
        sessions=sessions[0],
        users=sessions[1],
        organisations=None if organisations is None else len(reached),
        cost_eur=spent[0],
        cost_per_hour=ratio(spent[0], spent[1]),
    )


def rank(rows: list[SiteRow], min_coverage: float) -> Ranking:
    """Ranks among the sites whose coverage passes ``min_coverage``; the others apart."""
    ranked = [r for r in rows if r["coverage"] is not None and r["coverage"] >= min_coverage]
    apart = [r for r in rows if r not in ranked]

    def order(value: Callable[[SiteRow], float | None]) -> list[SiteRow]:
        return sorted(ranked, key=lambda r: (value(r) is None, -(value(r) or 0.0), r["site"]))

    by_use = order(lambda r: r["utilisation"])
    by_outside = order(lambda r: r["quota_esterna"])
    for n, r in enumerate(by_use, start=1):
        r["ranked"], r["rank_utilisation"] = True, n
    for n, r in enumerate(by_outside, start=1):
        r["rank_outside"] = n
    return Ranking(
        min_coverage=min_coverage,
        by_utilisation=[r["site"] for r in by_use],
        by_outside_share=[r["site"] for r in by_outside],
        apart=[Unranked(site=r["site"], coverage=r["coverage"]) for r in apart],
    )


def kind_rows(
    scope: Scope,
    sessions: SessionCounts,
    assets: Mapping[DeviceKey, Totals],
    costs: Mapping[DeviceKey, AssetCost],
) -> list[KindRow]:
    """Per site and kind, then per kind over the region (``site`` = "")."""
    a, b = scope.start_ms, scope.end_ms
    kinds = scope.registered()
    members: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for m in scope.members():
        members[(m.asset[0], m.kind)].append(m)
        members[("", m.kind)].append(m)
    counted = sessions.by(registered_by(scope, lambda k: (k[0], kinds.get(k, ""))))
    region = sessions.by(registered_by(scope, lambda k: ("", kinds.get(k, ""))))
    rows = []
    for (site, kind), within in sorted(members.items()):
        owned = {m.asset for m in within}
        totals = Totals()
        for key in owned:
            totals.add(assets.get(key, Totals()).seconds)
        f = figures.lab_figures(scope, within, totals, a, b)
        cost = sum(costs[k]["total_eur"] for k in owned if k in costs)
        found = (region if site == "" else counted).get((site, kind), (0, 0))
        rows.append(
            KindRow(
                site=site,
                kind=kind,
                devices=len(owned),
                available_s=f["available_s"],
                in_use_s=f["in_use_s"],
                in_use_open_s=f["in_use_open_s"],
                observed_open_s=f["observed_open_s"],
                utilisation=f["utilisation"],
                coverage=f["coverage"],
                sessions=found[0],
                users=found[1],
                cost_eur=cost,
                cost_per_hour=ratio(cost, totals.in_use_s / 3600),
            )
        )
    return sorted(rows, key=lambda r: (r["site"] == "", r["site"], r["kind"]))
