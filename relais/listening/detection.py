"""Crisis detection on 5-minute buckets, against the query's own baseline.

Pure functions over counts, so the product (reading rollups) and the backtests (reading
datasets) run the very same detector.

Baseline: the expected mentions per bucket for each hour of the day (once three days of history
exist; before that one level for all hours), times a day-of-week factor once three weeks exist.
Each is a trimmed mean over days, so a past crisis day does not become "normal"; hour-of-day
rates are shrunk toward the overall level so that a quiet hour seen on few days stays sane.
Over-dispersion (social volume is burstier than Poisson) is estimated from the history's
residuals, robustly (median), and widens the thresholds.

Alert: raised when a window (the current bucket, counted so far, or the last three) is far above
expectation in absolute, relative and statistical terms; or, for the negative share, when the
share of negative mentions in the last three buckets is far above the query's usual share. The
episode starts at the first unusual bucket before the trigger and ends after thirty minutes of
normal buckets. An alert is raised once per episode.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BUCKET = timedelta(minutes=5)
BUCKETS_PER_HOUR = 12
HISTORY = timedelta(days=28)
RECENT = timedelta(hours=3)


@dataclass(frozen=True)
class DetectorSettings:
    min_history: timedelta = timedelta(hours=12)
    min_count: int = 6  # mentions in the window (chosen on the backtests, benchmarks/alerts.py)
    # Mentions enough when they fall in a single bucket: four in five minutes, where one an hour
    # is usual, is rarer than six spread over fifteen (chosen on the backtests too).
    min_count_one_bucket: int = 4
    min_ratio: float = 3.0  # times the expected count
    min_z: float = 5.0  # standard deviations, dispersion included
    windows: tuple[int, ...] = (1, 3)  # buckets
    quiet_buckets: int = 6  # normal buckets that end an episode
    min_negative: int = 10
    min_share_rise: float = 0.25
    min_negative_z: float = 4.0


DEFAULT_SETTINGS = DetectorSettings()


@dataclass(frozen=True)
class Counts:
    total: int = 0
    negative: int = 0
    rated: int = 0  # mentions with a sentiment at all

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.total + other.total, self.negative + other.negative, self.rated + other.rated
        )


@dataclass(frozen=True)
class Baseline:
    hourly: tuple[float, ...]  # expected mentions per bucket, by hour of the day (UTC)
    weekday: tuple[float, ...]  # factor by day of the week (Monday first)
    dispersion: float
    negative_share: float
    history_days: float

    def expected(self, bucket: datetime) -> float:
        return self.hourly[bucket.hour] * self.weekday[bucket.weekday()]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        return cls(
            hourly=tuple(data["hourly"]),
            weekday=tuple(data["weekday"]),
            dispersion=float(data["dispersion"]),
            negative_share=float(data["negative_share"]),
            history_days=float(data["history_days"]),
        )


def bucket_start(moment: datetime) -> datetime:
    timestamp = int(moment.timestamp())
    return datetime.fromtimestamp(timestamp - timestamp % 300, tz=UTC)


def _trimmed_mean(values: list[float], share: float) -> float:
    """Mean without the highest values (at least one once there are three)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    drop = max(math.ceil(len(ordered) * share), 1 if len(ordered) >= 3 else 0)
    kept = ordered[: len(ordered) - drop]
    return sum(kept) / len(kept)


def build_baseline(
    history: Mapping[datetime, Counts],
    end: datetime,
    settings: DetectorSettings = DEFAULT_SETTINGS,
) -> Baseline | None:
    """The baseline from the buckets before `end`; None while history is too short."""
    if not history:
        return None
    first = min(history)
    start = max(first, end - HISTORY)
    if end - start < settings.min_history:
        return None
    hour_starts = _hours(start, end)
    hourly_totals = dict.fromkeys(hour_starts, 0)
    negative = rated = 0
    for bucket, counts in history.items():
        if start <= bucket < end:
            hour = bucket.replace(minute=0)
            if hour in hourly_totals:
                hourly_totals[hour] += counts.total
            negative += counts.negative
            rated += counts.rated
    days = (end - start) / timedelta(days=1)
    overall = _trimmed_mean([float(v) for v in hourly_totals.values()], 0.05)
    hourly = _hourly_profile(hourly_totals, overall, days)
    weekday = _weekday_factors(hourly_totals, days)
    floor = 1 / (BUCKETS_PER_HOUR * 24)  # at least one mention a day
    hourly = tuple(max(rate, floor) for rate in hourly)
    baseline = Baseline(
        hourly=hourly,
        weekday=weekday,
        dispersion=1.0,
        negative_share=(negative + 1) / (rated + 4),
        history_days=round(days, 2),
    )
    return Baseline(
        hourly=hourly,
        weekday=weekday,
        dispersion=_dispersion(hourly_totals, baseline),
        negative_share=baseline.negative_share,
        history_days=baseline.history_days,
    )


def _hours(start: datetime, end: datetime) -> list[datetime]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    hours = []
    while hour + timedelta(hours=1) <= end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _hourly_profile(totals: dict[datetime, int], overall: float, days: float) -> tuple[float, ...]:
    if days < 3:
        return tuple([overall / BUCKETS_PER_HOUR] * 24)
    by_hour: list[list[float]] = [[] for _ in range(24)]
    for hour, total in totals.items():
        by_hour[hour.hour].append(float(total))
    profile = []
    for values in by_hour:
        kept = len(values) - (1 if len(values) >= 3 else 0)
        slot = _trimmed_mean(values, 0.1)
        # Shrink toward the overall level with two pseudo-days of weight.
        profile.append((slot * kept + overall * 2) / (kept + 2) / BUCKETS_PER_HOUR)
    return tuple(profile)


def _weekday_factors(totals: dict[datetime, int], days: float) -> tuple[float, ...]:
    if days < 21:
        return (1.0,) * 7
    daily: dict[datetime, float] = {}
    for hour, total in totals.items():
        day = hour.replace(hour=0)
        daily[day] = daily.get(day, 0.0) + total
    overall = _trimmed_mean(list(daily.values()), 0.1) or 1.0
    factors = []
    for weekday in range(7):
        values = [total for day, total in daily.items() if day.weekday() == weekday]
        factor = _trimmed_mean(values, 0.1) / overall if values else 1.0
        factors.append(min(max(factor, 0.3), 3.0))
    return tuple(factors)


def _dispersion(totals: dict[datetime, int], baseline: Baseline) -> float:
    """Variance over mean of hourly counts, from the median squared Pearson residual."""
    residuals = []
    for hour, total in totals.items():
        expected = baseline.expected(hour) * BUCKETS_PER_HOUR
        residuals.append((total - expected) ** 2 / max(expected, 0.5))
    if not residuals:
        return 1.0
    # The median of a chi-square with one degree of freedom is 0.455.
    return min(max(statistics.median(residuals) / 0.455, 1.0), 25.0)


# ---------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True)
class Finding:
    """What the detector concludes for one metric at one moment."""

    unusual: bool  # a new episode would be raised now
    ended: bool  # an open episode is over
    started_at: datetime | None
    ended_at: datetime | None
    observed: float
    expected: float


def _window(
    recent: Mapping[datetime, Counts], last: datetime, size: int
) -> tuple[Counts, list[datetime]]:
    buckets = [last - BUCKET * offset for offset in range(size)]
    total = Counts()
    for bucket in buckets:
        total = total + recent.get(bucket, Counts())
    return total, buckets


def _volume_alarm(
    observed: int, expected: float, dispersion: float, settings: DetectorSettings, size: int
) -> bool:
    least = settings.min_count_one_bucket if size == 1 else settings.min_count
    if observed < least or observed < settings.min_ratio * expected:
        return False
    z = (observed - expected) / math.sqrt(dispersion * max(expected, 0.05))
    return z >= settings.min_z


def _volume_elevated(observed: int, expected: float, dispersion: float) -> bool:
    spread = math.sqrt(dispersion * max(expected, 0.05))
    return observed >= 2 and observed >= 1.5 * expected and observed > expected + 2 * spread


def assess_volume(
    baseline: Baseline,
    recent: Mapping[datetime, Counts],
    now: datetime,
    settings: DetectorSettings = DEFAULT_SETTINGS,
) -> Finding:
    current = bucket_start(now)
    best: tuple[int, float, datetime] | None = None
    for size in settings.windows:
        for last in (current, current - BUCKET):
            counts, buckets = _window(recent, last, size)
            expected = sum(baseline.expected(bucket) for bucket in buckets)
            if _volume_alarm(counts.total, expected, baseline.dispersion, settings, size) and (
                best is None or counts.total / max(expected, 0.05) > best[0] / max(best[1], 0.05)
            ):
                best = (counts.total, expected, min(buckets))
    latest = recent.get(current - BUCKET, Counts()).total
    if best is None:
        quiet = _quiet_since(recent, current, baseline, settings)
        return Finding(
            unusual=False,
            ended=quiet is not None,
            started_at=None,
            ended_at=quiet,
            observed=latest,
            expected=baseline.expected(current - BUCKET),
        )
    observed, expected, first = best
    return Finding(
        unusual=True,
        ended=False,
        started_at=_onset(recent, first, baseline),
        ended_at=None,
        observed=observed,
        expected=expected,
    )


def _onset(recent: Mapping[datetime, Counts], first: datetime, baseline: Baseline) -> datetime:
    """Walk back from the alarm over contiguous elevated buckets to where the surge began."""
    onset = first
    while True:
        previous = onset - BUCKET
        counts = recent.get(previous, Counts())
        if previous not in recent or not _volume_elevated(
            counts.total, baseline.expected(previous), baseline.dispersion
        ):
            break
        onset = previous
    for bucket in (first, first + BUCKET):  # the window may begin with a normal bucket
        counts = recent.get(bucket, Counts())
        if onset == bucket and not _volume_elevated(
            counts.total, baseline.expected(bucket), baseline.dispersion
        ):
            onset = bucket + BUCKET
    return onset


def _quiet_since(
    recent: Mapping[datetime, Counts],
    current: datetime,
    baseline: Baseline,
    settings: DetectorSettings,
) -> datetime | None:
    """Start of the normal stretch that ends an episode, if the last buckets are all normal."""
    closed = [current - BUCKET * offset for offset in range(settings.quiet_buckets, 0, -1)]
    for bucket in closed:
        counts = recent.get(bucket, Counts())
        if _volume_elevated(counts.total, baseline.expected(bucket), baseline.dispersion):
            return None
    return closed[0]


def assess_negative_share(
    baseline: Baseline,
    recent: Mapping[datetime, Counts],
    now: datetime,
    settings: DetectorSettings = DEFAULT_SETTINGS,
) -> Finding:
    current = bucket_start(now)
    counts, buckets = _window(recent, current, 3)
    usual = baseline.negative_share
    share = counts.negative / counts.rated if counts.rated else 0.0
    if _share_alarm(counts, usual, settings):
        start = (
            min(b for b in buckets if recent.get(b, Counts()).negative)
            if counts.negative
            else current
        )
        return Finding(True, False, start, None, round(share, 3), round(usual, 3))
    normal_run = 0
    for offset in range(1, settings.quiet_buckets + 1):
        window, _ = _window(recent, current - BUCKET * offset, 3)
        if _share_elevated(window, usual):
            break
        normal_run += 1
    ended = normal_run == settings.quiet_buckets
    return Finding(
        unusual=False,
        ended=ended,
        started_at=None,
        ended_at=current - BUCKET * settings.quiet_buckets if ended else None,
        observed=round(share, 3),
        expected=round(usual, 3),
    )


def _share_alarm(counts: Counts, usual: float, settings: DetectorSettings) -> bool:
    if counts.negative < settings.min_negative or not counts.rated:
        return False
    share = counts.negative / counts.rated
    if share < usual + settings.min_share_rise:
        return False
    z = (counts.negative - counts.rated * usual) / math.sqrt(counts.rated * usual * (1 - usual))
    return z >= settings.min_negative_z


def _share_elevated(counts: Counts, usual: float) -> bool:
    return counts.negative >= 3 and counts.negative / max(counts.rated, 1) >= usual + 0.15
