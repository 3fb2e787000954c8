"""Priority: how many minutes of waiting a customer's message is worth before it waits at all.

A conversation's urgency is ``now - urgent_since`` where ``urgent_since`` is the oldest
unanswered customer message moved earlier by this boost. Ordering by ``urgent_since`` ranks
conversations by priority in the database, and the score grows by itself as time passes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from relais.pipeline.models import Post

MINUTES_PER_FOLLOWER_DECADE = 20  # 100 followers: +40 min, 100,000: +100 min
SENTIMENT_MINUTES = {"negative": 60, "neutral": 0, "positive": 0}
INTENT_MINUTES = {"complaint": 45, "request": 20, "question": 15, "purchase_intent": 30}
MAX_BOOST_MINUTES = 8 * 60


def boost_minutes(post: Post) -> int:
    """The weight of one customer message; enrichment fields count only when filled."""
    followers = post.author.followers or 0
    boost = MINUTES_PER_FOLLOWER_DECADE * math.log10(followers + 1)
    boost += SENTIMENT_MINUTES.get(post.sentiment, 0)
    if post.sentiment == "negative" and post.sentiment_score is not None:
        boost += 30 * max(0.0, min(1.0, abs(post.sentiment_score)))
    boost += INTENT_MINUTES.get(post.intent, 0)
    return min(MAX_BOOST_MINUTES, round(boost))


def urgent_since(waiting_since: datetime | None, boost: int) -> datetime | None:
    return None if waiting_since is None else waiting_since - timedelta(minutes=boost)


def score(urgent_since: datetime | None, now: datetime) -> int:
    """The number shown to agents: weighted minutes of waiting (0 when nothing waits)."""
    if urgent_since is None:
        return 0
    return max(0, round((now - urgent_since).total_seconds() / 60))
