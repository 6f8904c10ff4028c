"""Before and after with a seeded bootstrap over weeks, and a difference in differences.

Each site's figures are kept per week of the baseline and of the pilot window (its units). A
resample draws as many weeks as each window has, with replacement, from numpy's
``default_rng(seed)`` (PCG64: the same draws on every platform), and the *same* weeks for every
site, so that a season or a holiday week drawn for the pilot site is drawn for its controls
too. Ratios are ratios of the resampled sums (a short week weighs less), counts per week are
means. The interval is the percentile interval (linear interpolation) of the resampled
changes, leaving out resamples in which a ratio is undefined (no hour in use, say) unless they
are over a tenth; the difference in differences is the pilot's change minus the pooled control
sites' change, resampled the same way. The same seed and data give the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from labmeter.api.region.model import Change, Interval

Draws = NDArray[np.float64]  # one value per resample; NaN where undefined

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


def _figures(sums: Sequence[Draws], units: int) -> list[Draws]:
    """The four figures (``METRICS``' order) from a window's sums, in ``Weekly.arrays``
    order: ratios of sums, counts per unit; NaN where undefined."""

    def ratio(num: Draws, den: Draws) -> Draws:
        out = np.full(num.shape, np.nan)
        np.divide(num, den, out=out, where=den != 0)
        return out

    per_unit = [x / units if units else np.full(x.shape, np.nan) for x in sums[4:]]
    if len(per_unit) == 1:
        per_unit.append(np.full(sums[0].shape, np.nan))  # no bookings: no organisations
    return [ratio(sums[0], sums[1]), ratio(sums[2], sums[3]), *per_unit]


def _window(
    weekly: Weekly, picks: NDArray[np.int64], units: int
) -> tuple[list[float | None], list[Draws]]:
    """A window's figures over all its units, and in each resample (``picks``: resamples x
    units indices)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in weekly.arrays]
    point = [
        float(v) for v in (f[0] for f in _figures([np.array([a.sum()]) for a in arrays], units))
    ]
    draws = _figures(
        [a[picks].sum(axis=1) if units else np.zeros(len(picks)) for a in arrays], units
    )
    return [None if np.isnan(v) else v for v in point], draws


def interval(point: float | None, draws: Draws, confidence: float) -> Interval:
    found = draws[~np.isnan(draws)]
    if point is None or not len(found) or len(found) < 0.9 * len(draws):
        return Interval(value=point, low=None, high=None)  # too many resamples undefined
    tail = (1 - confidence) / 2
    low, high = np.percentile(found, [tail * 100, (1 - tail) * 100])
    return Interval(value=point, low=float(low), high=float(high))


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
    rng = np.random.default_rng(seed)
    picks_b = rng.integers(0, max(units_b, 1), size=(resamples, units_b))
    picks_p = rng.integers(0, max(units_p, 1), size=(resamples, units_p))
    changes: dict[str, dict[str, Change]] = {}
    deltas: dict[str, list[Draws]] = {}  # series -> per metric, the resampled changes
    for key in baseline:
        point_b, draws_b = _window(baseline[key], picks_b, units_b)
        point_p, draws_p = _window(pilot[key], picks_p, units_p)
        deltas[key] = [p - b for b, p in zip(draws_b, draws_p, strict=True)]
        changes[key] = {
            name: Change(
                baseline=point_b[m],
                pilot=point_p[m],
                delta=interval(_minus(point_p[m], point_b[m]), deltas[key][m], confidence),
            )
            for m, name in enumerate(METRICS)
        }
    did: dict[str, Interval] = {}
    if pooled is not None:
        for m, name in enumerate(METRICS):
            point = _minus(changes[pilot_site][name]["delta"]["value"],
                           changes[pooled][name]["delta"]["value"])  # fmt: skip
            did[name] = interval(point, deltas[pilot_site][m] - deltas[pooled][m], confidence)
    return Compared(changes, did)
