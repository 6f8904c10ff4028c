"""Before and after with a seeded bootstrap over weeks, and a difference in differences.

Each site's figures are kept per week of the baseline and of the pilot window (its units). A
resample draws as many weeks as each window has, with replacement, from a ``random.Random``
seeded with the stated seed, and the *same* weeks for every site, so that a season or a
holiday week drawn for the pilot site is drawn for its controls too. Ratios are ratios of the
resampled sums (a short week weighs less), counts per week are means. The interval is the
percentile interval of the resampled changes; the difference in differences is the pilot's
change minus the pooled control sites' change, resampled the same way. The same seed and data
give the same intervals.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from labmeter.api.region.model import Change, Interval

METRICS = ("utilisation", "quota_esterna", "users_per_week", "organisations_per_week")


@dataclass(frozen=True)
class Weekly:
    """One site's figures per unit of a window (seconds, and counts per unit)."""

    in_use_open: tuple[float, ...]
    available: tuple[float, ...]
    external: tuple[float, ...]
    in_use: tuple[float, ...]
    users: tuple[float, ...]
    organisations: tuple[float, ...] | None  # None: no bookings

    @property
    def arrays(self) -> list[tuple[float, ...]]:
        out = [self.in_use_open, self.available, self.external, self.in_use, self.users]
        return out + ([self.organisations] if self.organisations is not None else [])

    @staticmethod
    def pooled(found: Sequence[Weekly]) -> Weekly:
        """Sites taken together, unit by unit: their seconds summed (so ratios are pooled
        ratios), their counts averaged (so a count compares with one site's)."""

        def add(arrays: list[tuple[float, ...]]) -> tuple[float, ...]:
            return tuple(map(sum, zip(*arrays, strict=True)))

        def mean(arrays: list[tuple[float, ...]]) -> tuple[float, ...]:
            return tuple(v / len(arrays) for v in add(arrays))

        orgs = [w.organisations for w in found if w.organisations is not None]
        return Weekly(
            add([w.in_use_open for w in found]),
            add([w.available for w in found]),
            add([w.external for w in found]),
            add([w.in_use for w in found]),
            mean([w.users for w in found]),
            mean(orgs) if orgs and len(orgs) == len(found) else None,
        )


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _metrics(sums: Sequence[float], units: int) -> list[float | None]:
    """The four figures from a window's sums (in ``Weekly.arrays`` order)."""
    per_unit = (lambda v: v / units) if units else (lambda _v: None)
    orgs = per_unit(sums[5]) if len(sums) > 5 else None
    return [_ratio(sums[0], sums[1]), _ratio(sums[2], sums[3]), per_unit(sums[4]), orgs]


def _getters(
    rng: random.Random, units: int, resamples: int
) -> list[Callable[..., tuple[float, ...]]]:
    """One getter per resample, picking ``units`` indices with replacement."""
    out: list[Callable[..., tuple[float, ...]]] = []
    if units == 0:  # nothing to draw: every figure stays undefined
        return [lambda _a: ()] * resamples
    for _ in range(resamples):
        idx = rng.choices(range(units), k=units)
        if units == 1:
            out.append(lambda a, i=idx[0]: (a[i],))
        else:
            out.append(itemgetter(*idx))
    return out


def _resampled(
    weekly: Weekly, getters: list[Callable[..., tuple[float, ...]]], units: int
) -> list[list[float | None]]:
    """Per figure (``METRICS``' order), its value in each resample: one pass over the
    resamples per array, ratios taken column-wise."""
    sums = [[sum(g(a)) for g in getters] for a in weekly.arrays]
    ratios = [[x / y if y else None for x, y in zip(sums[n], sums[n + 1], strict=True)]
              for n in (0, 2)]  # fmt: skip
    counts = [[x / units if units else None for x in sums[n]] for n in range(4, len(sums))]
    none: list[float | None] = [None] * len(getters)
    return [*ratios, *counts, *([none] if len(sums) == 5 else [])]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (sorted), linearly interpolated."""
    at = q * (len(values) - 1)
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def interval(point: float | None, draws: list[float | None], confidence: float) -> Interval:
    found = sorted(d for d in draws if d is not None)
    if point is None or len(found) < 0.9 * len(draws) or not found:
        return Interval(value=point, low=None, high=None)  # too many resamples undefined
    tail = (1 - confidence) / 2
    return Interval(value=point, low=percentile(found, tail), high=percentile(found, 1 - tail))


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True)
class Compared:
    changes: dict[str, dict[str, Change]]  # series -> metric -> change
    did: dict[str, Interval]  # metric -> the pilot's change minus the pooled control's


def compare(
    baseline: dict[str, Weekly],
    pilot: dict[str, Weekly],
    pilot_site: str,
    pooled: str | None,
    seed: int,
    resamples: int,
    confidence: float,
) -> Compared:
    """Every series' change (``baseline`` and ``pilot`` hold the same keys), and the pilot
    site's change minus the ``pooled`` series' (None: no control, no difference)."""
    units_b = len(next(iter(baseline.values())).in_use)
    units_p = len(next(iter(pilot.values())).in_use)
    rng = random.Random(seed)
    getters_b = _getters(rng, units_b, resamples)
    getters_p = _getters(rng, units_p, resamples)
    changes: dict[str, dict[str, Change]] = {}
    deltas: dict[str, list[list[float | None]]] = {}  # series -> metric -> per resample
    for key in baseline:
        point_b = _metrics([sum(a) for a in baseline[key].arrays], units_b)
        point_p = _metrics([sum(a) for a in pilot[key].arrays], units_p)
        draws_b = _resampled(baseline[key], getters_b, units_b)
        draws_p = _resampled(pilot[key], getters_p, units_p)
        per_metric: list[list[float | None]] = [
            [_minus(p, b) for b, p in zip(draws_b[m], draws_p[m], strict=True)]
            for m in range(len(METRICS))
        ]
        deltas[key] = per_metric
        changes[key] = {
            name: Change(
                baseline=point_b[m],
                pilot=point_p[m],
                delta=interval(_minus(point_p[m], point_b[m]), per_metric[m], confidence),
            )
            for m, name in enumerate(METRICS)
        }
    did: dict[str, Interval] = {}
    if pooled is not None:
        for m, name in enumerate(METRICS):
            point = _minus(changes[pilot_site][name]["delta"]["value"],
                           changes[pooled][name]["delta"]["value"])  # fmt: skip
            draws = [
                _minus(a, b) for a, b in zip(deltas[pilot_site][m], deltas[pooled][m], strict=True)
            ]
            did[name] = interval(point, draws, confidence)
    return Compared(changes, did)
