from datetime import UTC, datetime, timedelta

from relais.listening.detection import (
    BUCKET,
    Counts,
    assess_negative_share,
    assess_volume,
    build_baseline,
)

START = datetime(2024, 3, 1, tzinfo=UTC)


def steady(days: float, per_hour: int = 2) -> dict[datetime, Counts]:
    """A quiet history: `per_hour` mentions at the top of every hour, a quarter negative."""
    history = {}
    for hour in range(int(days * 24)):
        history[START + timedelta(hours=hour)] = Counts(per_hour, hour % 2, per_hour)
    return history


def test_no_baseline_before_twelve_hours_of_history():
    assert build_baseline(steady(0.4), START + timedelta(hours=10)) is None
    assert build_baseline(steady(1), START + timedelta(days=1)) is not None


def test_the_baseline_learns_the_time_of_day():
    history = steady(7)
    for day in range(7):  # busy lunchtimes
        history[START + timedelta(days=day, hours=12)] = Counts(30, 0, 30)
    baseline = build_baseline(history, START + timedelta(days=7))
    assert baseline is not None
    assert baseline.hourly[12] > 5 * baseline.hourly[3]


def test_a_surge_raises_and_points_at_its_first_bucket():
    end = START + timedelta(days=3)
    baseline = build_baseline(steady(3), end)
    assert baseline is not None
    recent = {end: Counts(4, 0, 4), end + BUCKET: Counts(15, 0, 15)}
    finding = assess_volume(baseline, recent, end + BUCKET + timedelta(minutes=2))
    assert finding.unusual
    assert finding.started_at == end
    assert finding.observed >= 15


def test_ordinary_noise_raises_nothing():
    end = START + timedelta(days=3)
    baseline = build_baseline(steady(3), end)
    assert baseline is not None
    recent = {end: Counts(2, 1, 2), end + BUCKET * 3: Counts(1, 0, 1)}
    finding = assess_volume(baseline, recent, end + BUCKET * 7)
    assert not finding.unusual
    assert finding.ended  # six normal buckets in a row


def test_an_episode_is_not_over_while_buckets_stay_high():
    end = START + timedelta(days=3)
    baseline = build_baseline(steady(3), end)
    assert baseline is not None
    recent = {end + BUCKET * i: Counts(5, 0, 5) for i in range(8)}
    finding = assess_volume(baseline, recent, end + BUCKET * 8)
    assert not finding.ended


def test_a_rise_of_the_negative_share_raises_even_at_usual_volume():
    end = START + timedelta(days=3)
    baseline = build_baseline(steady(3, per_hour=8), end)
    assert baseline is not None
    recent = {end + BUCKET * i: Counts(6, 5, 6) for i in range(3)}
    finding = assess_negative_share(baseline, recent, end + BUCKET * 2 + timedelta(minutes=4))
    assert finding.unusual
    assert finding.observed > finding.expected + 0.25


def test_four_mentions_in_one_bucket_raise_but_not_spread_over_three():
    """Where one mention an hour is usual: four in five minutes is a surge's first sign (the
    Free outage began so); four in fifteen minutes is still ordinary chatter."""
    end = START + timedelta(days=3)
    baseline = build_baseline(steady(3, per_hour=1), end)
    assert baseline is not None
    bunched = assess_volume(baseline, {end: Counts(4, 0, 4)}, end + timedelta(minutes=4))
    assert bunched.unusual
    assert bunched.started_at == end
    spread = {
        end: Counts(1, 0, 1),
        end + BUCKET: Counts(2, 0, 2),
        end + 2 * BUCKET: Counts(1, 0, 1),
    }
    assert not assess_volume(baseline, spread, end + 2 * BUCKET + timedelta(minutes=4)).unusual
    assert not assess_volume(baseline, {end: Counts(3, 0, 3)}, end + timedelta(minutes=4)).unusual
