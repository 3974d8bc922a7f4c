"""The leak detector: a robust RSS trend over a sliding window and the rule that turns it into a
verdict.

Rule ("leak suspected"). Every sample refits the RSS trend over the last `window_s` seconds (600 by
default: the window bounds the slowest leak the minimum growth lets through, 6 MB in 10 min =
36 MB/h on a small process) with
Theil-Sen (median of pairwise slopes; a seeded subset of at most 3000 pairs keeps one fit near a
millisecond in pure Python). A leak is suspected when, for every fit during the last `hold_s`:

  * warm-up: the watch has run `warmup_s` (20 s) and the fit spans at least `min_span_s` =
    min(15 s, window/2) with at least 8 samples; the figures are shown meanwhile, no verdict;
  * minimum absolute growth: the fitted rise over the fit's span (slope x span) is at least
    max(6 MB, 1 % of RSS). A process that settles after start-up (buffers filled, allocator
    arenas grown: 0.5-3 MB on a live session watched from its start) has a steep-looking slope
    over a short span but never grows this much; a 1 MB/s leak passes it within 6 s;
  * the slope is above max(2 MB/h, 5 % of the current RSS per hour), so a big process is not
    flagged for noise-level growth and a small one not for a few pages;
  * the rise is not slowing down: the slope over the later half of the fit's span is at least
    a third of the slope over the whole span. A process settling after start-up (a live session
    watched from its first second: +50 MB in 7 s while it loads, +1 MB in the next 10 s, then
    flat) grows fast, then slower and slower; a leak keeps its pace;
  * Kendall's tau over the same pairs is >= 0.6 (pairs agree on "up" at least 4:1), so a GC
    sawtooth (tau near 0) or a lone step (a cache filled once: only the pairs that span it go
    up, and at most about half of them do, so tau <= ~0.5) does not count as a trend, while a
    leak, even a noisy one, keeps tau near 1.

hold_s = min(10 s, window/4); the hold may run during the warm-up, the verdict waits for its end.
With the defaults a 1 MB/s leak is flagged about 25 s into the watch; a healthy process never is,
however long it runs. The price of answering that fast: memory that climbs for more than ~25 s
before a collector frees it (a sawtooth with long teeth) is flagged while it climbs; the verdict
is "now" and clears when it drops. The verdict is "now"; `first_suspected_s`
keeps when it first fired, and `last_suspected_s` when it last held.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


def theil_sen(ts: Sequence[float], ys: Sequence[float], max_pairs: int = 3000, seed: int = 0) -> tuple[float, float]:
    """(slope, tau): the median pairwise slope dy/dt (y units per t unit) and Kendall's tau over
    the same pairs, in [-1, 1]. Raises ValueError when ts and ys differ in length.

    All pairs when there are at most `max_pairs`, else `max_pairs` pairs drawn with a fixed seed,
    which keeps the estimate's breakdown point (29 %) and makes a run reproducible. Method: Sen
    (1968), "Estimates of the regression coefficient based on Kendall's tau".
    """
    n = len(ts)
    if n != len(ys):
        raise ValueError("ts and ys differ in length")
    if n < 2:
        return 0.0, 0.0
    if n * (n - 1) // 2 <= max_pairs:
        pairs = ((i, j) for i in range(n - 1) for j in range(i + 1, n))
    else:
        rng = random.Random(seed)
        pairs = ((i, j) if i < j else (j, i)
                 for i, j in ((rng.randrange(n), rng.randrange(n)) for _ in range(max_pairs)) if i != j)
    slopes = []
    up = down = 0
    for i, j in pairs:
        dt = ts[j] - ts[i]
        if dt == 0:
            continue
        d = (ys[j] - ys[i]) / dt
        slopes.append(d)
        if d > 0:
            up += 1
        elif d < 0:
            down += 1
    if not slopes:
        return 0.0, 0.0
    slopes.sort()
    m = len(slopes)
    slope = slopes[m // 2] if m % 2 else 0.5 * (slopes[m // 2 - 1] + slopes[m // 2])
    return slope, (up - down) / m


@dataclass(frozen=True)
class LeakRule:
    """When a rising RSS counts as a leak (module docstring). Times in seconds, memory in MB
    (2**20 bytes)."""

    window_s: float = 600.0
    warmup_s: float = 20.0
    abs_mb_per_h: float = 2.0
    rel_per_h: float = 0.05
    min_growth_mb: float = 6.0
    min_growth_rel: float = 0.01
    min_tau: float = 0.6
    min_later_ratio: float = 1 / 3  # a start-up measured from its first second: <= 0.17
    min_samples: int = 8

    @property
    def min_span_s(self) -> float:
        return min(15.0, self.window_s / 2)

    @property
    def hold_s(self) -> float:
        return min(10.0, self.window_s / 4)

    def threshold_mb_per_h(self, rss_mb: float) -> float:
        """The slope a leak must exceed at this RSS, MB per hour."""
        return max(self.abs_mb_per_h, self.rel_per_h * rss_mb)

    def min_growth(self, rss_mb: float) -> float:
        """The fitted rise (MB) over the fit's span a leak must reach at this RSS."""
        return max(self.min_growth_mb, self.min_growth_rel * rss_mb)


class LeakTracker:
    """RSS samples over a sliding window, the Theil-Sen trend, and the leak verdict.

    add(t, rss_mb) with t in seconds since the watch started (non-decreasing) and RSS in MB.
    """

    def __init__(self, rule: LeakRule):
        self.rule = rule
        self.ts: deque[float] = deque()
        self.rss: deque[float] = deque()
        self.slope_mb_per_h = 0.0
        self.tau = 0.0
        self.span_s = 0.0
        self.growth_mb = 0.0  # slope x span: the fitted rise over the window
        self.later_slope_mb_per_h: float | None = None  # over the later half, when it was checked
        self.warming_up = True
        self.suspected = False
        self.first_suspected_s: float | None = None
        self.last_suspected_s: float | None = None
        self._cond_since: float | None = None

    def add(self, t: float, rss_mb: float) -> None:
        self.ts.append(t)
        self.rss.append(rss_mb)
        while self.ts and t - self.ts[0] > self.rule.window_s:
            self.ts.popleft()
            self.rss.popleft()
        slope, self.tau = theil_sen(self.ts, self.rss)
        self.slope_mb_per_h = slope * 3600.0
        self.span_s = self.ts[-1] - self.ts[0]
        self.growth_mb = slope * self.span_s
        r = self.rule
        fit_ready = self.span_s >= r.min_span_s and len(self.ts) >= r.min_samples
        self.warming_up = t < r.warmup_s or not fit_ready
        cond = (fit_ready and self.growth_mb >= r.min_growth(rss_mb)
                and self.slope_mb_per_h > r.threshold_mb_per_h(rss_mb) and self.tau >= r.min_tau)
        if cond:  # only then is the second fit worth its millisecond
            half = t - self.span_s / 2
            k = next(i for i, x in enumerate(self.ts) if x >= half)
            later, _ = theil_sen(list(self.ts)[k:], list(self.rss)[k:])
            self.later_slope_mb_per_h = later * 3600.0
            cond = self.later_slope_mb_per_h >= r.min_later_ratio * self.slope_mb_per_h
        if not cond:
            self._cond_since = None
        elif self._cond_since is None:
            self._cond_since = t
        # the hold may run during the warm-up; the verdict waits for its end
        self.suspected = cond and t - self._cond_since >= r.hold_s and not self.warming_up
        if self.suspected:
            self.last_suspected_s = t
            if self.first_suspected_s is None:
                self.first_suspected_s = t
