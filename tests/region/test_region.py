"""The regional report on a simulated region: the before and after comparison finds the
injected effect at the pilot and none at a control, a site with poor coverage is flagged and
not ranked, every regional figure equals the sum or union of the per-site figures the
existing routes give (one test per figure), and distinct users per calendar year equal the
simulator's pseudonyms."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from labmeter.api.keys import Role
from labmeter.schema import BUSY_HOUR_S, HOUR_MS
from labmeter.simulators.region import Region
from tests.region.conftest import Simulated

PILOT, LOW = "its-fi", "its-si"  # the pilot, the site whose agents saw under half the days
CONTROLS = ("its-pi", "its-li", "its-ar")
EXACT = {"rel": 1e-9, "abs": 1e-6}


def _iso(region: Region, day: date) -> str:
    return datetime.combine(day, time(), region.calendar.zone).isoformat()


def _window(region: Region) -> dict[str, str]:
    return {"start": _iso(region, region.first),
            "end": _iso(region, region.first + timedelta(days=region.days))}  # fmt: skip


BASELINE = (date(2025, 9, 8), date(2025, 11, 3))  # 8 weeks before the change
AFTER = (date(2025, 11, 3), date(2026, 1, 12))  # 10 weeks after, Christmas closure included


def _pilot(region: Region) -> dict[str, str]:
    def span(a: date, b: date) -> str:
        return f"{_iso(region, a)}..{_iso(region, b)}"

    return {"pilot_site": PILOT, "baseline": span(*BASELINE), "pilot": span(*AFTER)}


@pytest.fixture(scope="module")
def report(simulated: Simulated) -> dict[str, Any]:
    region = simulated.region
    found: dict[str, Any] = simulated.api.get("/api/v1/region", **_window(region), **_pilot(region))
    return found


def _sites(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["site"]: r for r in report["sites"]}


def _contains(interval: dict[str, Any], value: float) -> bool:
    return bool(interval["low"] <= value <= interval["high"])


def test_before_and_after_recovers_the_injected_effect_and_a_control_shows_none(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    effect = simulated.region.effect
    c = report["comparison"]
    assert c["site"] == PILOT and c["unit"] == "week" and c["seed"] == 1
    assert c["resamples"] == 2000 and c["confidence"] == 0.95
    assert set(c["controls"]) == set(CONTROLS)  # the low-coverage site is no control
    assert c["baseline_units"] == 8 and c["pilot_units"] == 9  # the week after Christmas closed
    rows = {r["site"]: r for r in c["sites"]}
    pilot = rows[PILOT]["quota_esterna"]["delta"]
    assert _contains(pilot, effect) and pilot["low"] > 0, pilot
    did = c["did"]["quota_esterna"]
    assert _contains(did, effect) and did["low"] > 0, did
    # Nothing was injected into the pilot's use: its difference from the controls holds 0.
    assert _contains(c["did"]["utilisation"], 0.0), c["did"]["utilisation"]
    for site in CONTROLS:
        assert _contains(rows[site]["quota_esterna"]["delta"], 0.0), (site, rows[site])
    assert _contains(c["pooled"]["quota_esterna"]["delta"], 0.0)
    assert rows[LOW]["role"] == "apart"
    # Seeded: the same request gives the same intervals; another seed other ones.
    region = simulated.region
    again = simulated.api.get("/api/v1/region", **_window(region), **_pilot(region))
    assert again["comparison"] == c
    other = simulated.api.get("/api/v1/region", **_window(region), **_pilot(region), seed=2)
    assert other["comparison"]["did"] != c["did"]
    assert other["comparison"]["did"]["quota_esterna"]["value"] == did["value"]


def test_a_change_date_compares_the_window_before_it_with_the_window_after(
    simulated: Simulated,
) -> None:
    region = simulated.region
    change = _iso(region, region.change)
    found = simulated.api.get("/api/v1/region", **_window(region), pilot_site=PILOT, change=change)[
        "comparison"
    ]
    assert found["baseline_start_ms"] == region.start_ms
    assert found["baseline_end_ms"] == found["pilot_start_ms"] == region.ms(region.change)
    assert found["pilot_end_ms"] == region.end_ms
    assert _contains(found["did"]["quota_esterna"], region.effect)


def test_a_site_with_low_coverage_is_flagged_and_not_ranked(report: dict[str, Any]) -> None:
    sites = _sites(report)
    ranking = report["ranking"]
    assert ranking["min_coverage"] == 0.8
    assert sites[LOW]["coverage"] < 0.6 and not sites[LOW]["ranked"]
    assert sites[LOW]["rank_utilisation"] is None and sites[LOW]["rank_outside"] is None
    assert [a["site"] for a in ranking["apart"]] == [LOW]
    assert ranking["apart"][0]["coverage"] == sites[LOW]["coverage"]
    assert LOW not in ranking["by_utilisation"] and LOW not in ranking["by_outside_share"]
    ranked = [sites[s] for s in ranking["by_utilisation"]]
    assert [r["rank_utilisation"] for r in ranked] == [1, 2, 3, 4]
    assert all(r["coverage"] >= 0.8 for r in ranked)
    assert [r["utilisation"] for r in ranked] == sorted(
        (r["utilisation"] for r in ranked), reverse=True
    )
    assert ranking["by_outside_share"][0] == PILOT  # the pilot opened its lab most


def test_utilisation_and_coverage_per_site_equal_the_utilisation_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    sites = _sites(report)
    summed = defaultdict(float)
    for site, row in sites.items():
        (route,) = simulated.api.get("/api/v1/utilisation", **window, group_by="site", site=site)
        for key in ("available_s", "in_use_s", "in_use_open_s", "observed_open_s"):
            assert row[key] == pytest.approx(route[key], **EXACT), (site, key)
            summed[key] += route[key]
        assert row["utilisation"] == pytest.approx(route["utilisation"], **EXACT)
        assert row["coverage"] == pytest.approx(route["coverage"], **EXACT)
        assert row["devices"] == route["devices"]
    region = report["region"]
    for key, value in summed.items():
        assert region[key] == pytest.approx(value, **EXACT), key
    assert region["utilisation"] == pytest.approx(summed["in_use_open_s"] / summed["available_s"])
    assert region["coverage"] == pytest.approx(summed["observed_open_s"] / summed["available_s"])


def test_outside_share_by_category_per_site_equals_the_openness_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    totals: dict[str, float] = defaultdict(float)
    for site, row in _sites(report).items():
        total = simulated.api.get("/api/v1/openness", **window, site=site)["total"]
        assert row["quota_esterna"] == pytest.approx(total["quota_esterna"], **EXACT)
        assert row["external_s"] == pytest.approx(total["external_s"], **EXACT)
        for category, share in total["categories"].items():
            assert row["categories"][category] == pytest.approx(share["in_use_s"], **EXACT)
            totals[category] += share["in_use_s"]
    everyone = simulated.api.get("/api/v1/openness", **window)["total"]
    region = report["region"]
    assert region["quota_esterna"] == pytest.approx(everyone["quota_esterna"], **EXACT)
    for category, seconds in totals.items():
        assert region["categories"][category] == pytest.approx(seconds, **EXACT)


def test_sessions_and_distinct_users_per_site_equal_the_sessions_summary(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    sessions = users = 0
    for site, row in _sites(report).items():
        summary = simulated.api.get("/api/v1/sessions/summary", **window, site=site)
        assert (row["sessions"], row["users"]) == (summary["sessions"], summary["users"])
        sessions, users = sessions + summary["sessions"], users + summary["users"]
    everyone = simulated.api.get("/api/v1/sessions/summary", **window)
    region = report["region"]
    # The region's users are the union of the sites' pseudonyms (each site has its own).
    assert (region["sessions"], region["users"]) == (everyone["sessions"], everyone["users"])
    assert (sessions, users) == (everyone["sessions"], everyone["users"])


def test_outside_organisations_per_site_equal_the_bookings_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    for site, row in _sites(report).items():
        found = simulated.api.get("/api/v1/bookings", **window, site=site)
        assert row["organisations"] == found["outside_organisations"], site
        truth = simulated.truth.organisations(
            site, simulated.region.start_ms, simulated.region.end_ms
        )
        assert row["organisations"] == len(truth)
    everyone = simulated.api.get("/api/v1/bookings", **window)
    assert report["region"]["organisations"] == everyone["outside_organisations"]


def test_cost_per_hour_per_site_equals_the_site_reports_costs(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    spent = hours = 0.0
    for site, row in _sites(report).items():
        costs = simulated.api.get("/api/v1/report", **window, site=site)["costs"]["assets"]
        equipment = [c for c in costs if c["asset_kind"] == "equipment"]
        total = sum(c["total_eur"] for c in equipment)
        used = sum(c["hours"] for c in equipment)
        assert row["cost_eur"] == pytest.approx(total, **EXACT)
        assert row["cost_per_hour"] == pytest.approx(total / used, **EXACT)
        spent, hours = spent + total, hours + used
    assert report["region"]["cost_eur"] == pytest.approx(spent, **EXACT)
    assert report["region"]["cost_per_hour"] == pytest.approx(spent / hours, **EXACT)


def test_figures_per_kind_equal_the_utilisation_route_by_kind(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    kinds = {(k["site"], k["kind"]): k for k in report["kinds"]}
    summed: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for site in _sites(report):
        for route in simulated.api.get("/api/v1/utilisation", **window, group_by="kind", site=site):
            row = kinds[(site, route["kind"])]
            for key in (
                "available_s",
                "in_use_open_s",
                "observed_open_s",
                "utilisation",
                "coverage",
            ):
                assert row[key] == pytest.approx(route[key], **EXACT), (site, route["kind"], key)
            assert row["devices"] == route["devices"]
            for key in ("available_s", "in_use_open_s"):
                summed[route["kind"]][key] += route[key]
    for kind, sums in summed.items():
        for key, value in sums.items():
            assert kinds[("", kind)][key] == pytest.approx(value, **EXACT), (kind, key)


def test_peak_seats_against_licences_equal_the_software_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    loads = {(r["site"], r["app"]): r for r in report["saturation"]["licences"]}
    for site in _sites(report):
        for route in simulated.api.get("/api/v1/software", **window, site=site):
            row = loads[(site, route["app"])]
            assert (row["peak_seats"], row["seats_owned"]) == (
                route["peak_seats"],
                route["seats_owned"],
            )
    assert any(r["peak_share"] > 1 for r in loads.values())  # PCs outnumber the seats


def test_idle_assets_are_the_devices_below_the_threshold_in_the_utilisation_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    rows = simulated.api.get("/api/v1/utilisation", **window, group_by="device")
    below = {
        (r["site"], r["lab"], r["device"]): r["utilisation"]
        for r in rows
        if r["registered"] and r["utilisation"] is not None and r["utilisation"] < 0.2
    }
    idle = {
        (r["site"], r["lab"], r["device"]): r["utilisation"] for r in report["saturation"]["idle"]
    }
    assert idle.keys() == below.keys() and idle  # the low-coverage site's devices
    for key, value in idle.items():
        assert value == pytest.approx(below[key], **EXACT)


def test_distinct_users_per_calendar_year_equal_the_simulators_pseudonyms(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    region, truth = simulated.region, simulated.truth
    new_year = region.ms(date(2026, 1, 1))
    every = {f["site"]: f for f in report["indicators"]["funds"] if f["fund"] == ""}
    total = {"2025": 0, "2026": 0}
    for site in _sites(report):
        years = every[site]["users_per_year"]
        expected = {"2025": len(truth.users(site, region.start_ms, new_year)),
                    "2026": len(truth.users(site, new_year, region.end_ms))}  # fmt: skip
        assert years == expected, site
        assert every[site]["users"] == len(truth.users(site, region.start_ms, region.end_ms))
        for year, n in years.items():
            total[year] += n
        # and through the existing route, over the calendar year's part of the window
        part = simulated.api.get(
            "/api/v1/sessions/summary",
            site=site,
            start=region.start_ms // 1000,
            end=new_year // 1000,
        )
        assert part["users"] == years["2025"]
    assert every[""]["users_per_year"] == total


def test_semester_figures_equal_the_routes_over_each_half_year(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    every = [s for s in report["indicators"]["semesters"] if s["fund"] == "" and s["site"]]
    assert {s["semester"] for s in every} == {"2025-S2", "2026-S1"}
    for s in every:
        window = {"start": s["start_ms"] // 1000, "end": s["end_ms"] // 1000, "site": s["site"]}
        summary = simulated.api.get("/api/v1/sessions/summary", **window)
        assert (s["sessions"], s["users"]) == (summary["sessions"], summary["users"])
        openness = simulated.api.get("/api/v1/openness", **window)["total"]
        assert s["in_use_s"] == pytest.approx(openness["in_use_s"], **EXACT)
        assert s["external_s"] == pytest.approx(openness["external_s"], **EXACT)


def test_external_hours_per_fund_equal_the_simulated_samples(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    """No route splits a lab's use by fund: the simulator's own samples do."""
    funds = {eq.key: eq.funding.fund for eq in simulated.region.inventory.equipment.values()}
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for _day, found in simulated.region.each_day():
        for f in found:
            d = f.device
            for s in f.samples:
                if s.category in ("school", "company", "training_agency"):
                    expected[(funds[(d.site, d.lab, d.id)], d.site)] += s.in_use_s
    rows = {(f["fund"], f["site"]): f for f in report["indicators"]["funds"] if f["fund"]}
    for (fund, site), seconds in expected.items():
        row = rows[(fund, site)]
        assert row["external_s"] == pytest.approx(seconds, **EXACT), (fund, site)
        cost = sum(
            eq.cost or 0.0
            for eq in simulated.region.inventory.equipment.values()
            if eq.funding.fund == fund and eq.site == site
        )
        assert row["external_per_1000_eur"] == pytest.approx(seconds / 3600 / (cost / 1000))


def test_durability_series_per_asset_equal_the_monthly_utilisation_route(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    window = _window(simulated.region)
    rows = simulated.api.get("/api/v1/utilisation", **window, group_by="device", every="month")
    monthly = {(r["site"], r["lab"], r["device"], _ms(r["period_start"])): r for r in rows}
    series = report["indicators"]["durability"]
    assert len(series) == 25
    for d in series:
        assert len(d["months"]) == 5  # September to January, all within five years
        for m in d["months"]:
            route = monthly[(d["site"], d["lab"], d["device"], m["start_ms"])]
            assert m["in_use_s"] == pytest.approx(route["in_use_s"], **EXACT), (d, m)
            assert m["available_s"] == pytest.approx(route["available_s"], **EXACT)


def _ms(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def test_distinct_users_per_week_are_the_mean_of_each_weeks_summary(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    region = simulated.region
    pilot = next(r for r in report["comparison"]["sites"] if r["site"] == PILOT)
    weeks = [BASELINE[0] + timedelta(days=7 * n) for n in range(8)]
    users = [
        simulated.api.get(
            "/api/v1/sessions/summary", site=PILOT,
            start=_iso(region, w), end=_iso(region, w + timedelta(days=7)),
        )["users"]
        for w in weeks
    ]  # fmt: skip
    assert pilot["users_per_week"]["baseline"] == pytest.approx(sum(users) / len(users))


def test_full_hours_and_peaks_per_lab_and_kind_equal_the_simulated_samples(
    simulated: Simulated, report: dict[str, Any]
) -> None:
    """Busy devices through the collector's busy rollups against the samples themselves: a
    device busy in an hour it was in use 45 minutes, an opening hour full with every device
    of the kind busy."""
    region = simulated.region
    inv = region.inventory
    busy: dict[tuple[str, str, str, int], int] = defaultdict(int)
    in_use: dict[tuple[str, str, str, str, int], float] = defaultdict(float)
    for _day, found in region.each_day():
        for f in found:
            d = f.device
            for s in f.samples:
                in_use[(d.site, d.lab, d.kind, d.id, s.start_ms - s.start_ms % HOUR_MS)] += (
                    s.in_use_s
                )
    for (site, lab, kind, _device, hour), seconds in in_use.items():
        busy[(site, lab, kind, hour)] += seconds >= BUSY_HOUR_S
    owned: dict[tuple[str, str, str], int] = defaultdict(int)
    for eq in inv.equipment.values():
        owned[(eq.site, eq.lab, eq.kind)] += 1
    spans = {
        key: list(inv.opening_spans(lab, region.start_ms, region.end_ms))
        for key, lab in inv.labs.items()
    }

    def open_s(site: str, lab: str, hour: int) -> float:
        return (
            sum(max(0, min(b, hour + HOUR_MS) - max(a, hour)) for a, b in spans[(site, lab)]) / 1000
        )

    full: dict[tuple[str, str, str], float] = defaultdict(float)
    peak: dict[tuple[str, str, str], int] = defaultdict(int)
    for (site, lab, kind, hour), n in busy.items():
        if open_s(site, lab, hour):
            peak[(site, lab, kind)] = max(peak[(site, lab, kind)], n)
            if n >= owned[(site, lab, kind)]:
                full[(site, lab, kind)] += open_s(site, lab, hour)
    rows = report["saturation"]["labs"]
    assert len(rows) == len(owned)
    for r in rows:
        key = (r["site"], r["lab"], r["kind"])
        assert r["devices"] == owned[key]
        assert r["full_s"] == pytest.approx(full[key], **EXACT), key
        assert r["peak_busy"] == peak[key], key
    assert any(r["full_s"] > 0 and r["devices"] > 1 for r in rows)


def test_bad_pilot_arguments_are_refused_with_the_reason(simulated: Simulated) -> None:
    region = simulated.region
    client = simulated.api.client_as(Role.evaluator)
    window = _window(region)
    cases = [
        ({"change": _iso(region, region.change)}, "pilot site"),
        ({"pilot_site": PILOT}, "change date"),
        ({"pilot_site": PILOT, "baseline": "2025-09-08T00:00:00Z"}, "change date"),
        ({"pilot_site": PILOT, "baseline": "2025-09-08T00:00:00Z..2025-11-10T00:00:00Z",
          "pilot": "2025-11-03T00:00:00Z..2026-01-10T00:00:00Z"}, "overlap"),
        ({"pilot_site": PILOT, "change": "2024-01-01T00:00:00Z"}, "inside"),
        ({"pilot_site": PILOT, "change": _iso(region, region.change), "resamples": 5}, ""),
    ]  # fmt: skip
    for params, reason in cases:
        response = client.get("/api/v1/region", params={**window, **params})
        assert response.status_code == 422, (params, response.text)
        assert reason in response.text
