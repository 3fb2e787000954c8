"""Suggested replies: the brand's own past answers to messages most like the one at hand.

Local and offline. Past (customer message, brand reply) pairs are indexed with TF-IDF over
character n-grams of the customer's message (robust to typos, works in French and English
alike); a new message is compared with all of them by one sparse product. The replies of the
closest messages vote, weighted by similarity, for their *template* (the reply with its
addressee, the customer's first name and the agent's signature taken out), so the three
suggestions are distinct answers, ready to adapt with {customer_name} and {agent_name}.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import connection
from sklearn.feature_extraction.text import TfidfVectorizer

from relais.accounts.models import User
from relais.inbox import variables
from relais.inbox.models import Conversation, Message
from relais.pipeline.models import Direction, Post

NEIGHBOURS = 40
INDEX_TTL_SECONDS = 300
MAX_PAIRS = 20_000
LEADING_MENTIONS = re.compile(r"^(?:\s*@\w+)+\s*")
MENTION_OR_URL = re.compile(r"@\w+|https?://\S+")
SIGNATURE = re.compile(r"\s*(?:[*^~-]\s?[A-Z]{1,4}|[-\u2013]\s?[A-Z][a-z]+)\s*$")
SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str
    customer_name: str


@dataclass(frozen=True)
class Suggestion:
    template: str
    score: float


def template_of(answer: str, customer_name: str) -> str:
    """The reply made reusable: no addressee, the customer's first name and the signature
    turned into variables."""
    text = LEADING_MENTIONS.sub("", answer).strip()
    first_name = (customer_name.split() or [""])[0].strip(".,")
    if len(first_name) > 1:
        text = re.sub(rf"\b{re.escape(first_name)}\b", "{customer_name}", text)
    if SIGNATURE.search(text):
        text = SIGNATURE.sub(" ^{agent_name}", text)
    return SPACES.sub(" ", text).strip()


def question_text(text: str) -> str:
    return MENTION_OR_URL.sub(" ", text).lower()


class ReplyIndex:
    """Nearest past questions by cosine similarity of character n-gram TF-IDF vectors."""

    def __init__(self, pairs: Iterable[Pair]) -> None:
        kept = [p for p in pairs if p.answer.strip()]
        self.templates: list[str] = []
        template_ids: dict[str, int] = {}
        self.answer_of: list[int] = []
        for pair in kept:
            template = template_of(pair.answer, pair.customer_name)
            self.answer_of.append(template_ids.setdefault(template, len(template_ids)))
            if len(template_ids) > len(self.templates):
                self.templates.append(template)
        self.answer_of_array = np.array(self.answer_of, dtype=np.int64)
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1, dtype=np.float32
        )
        # Kept transposed (one row per n-gram): a question then touches only the rows of its
        # own n-grams, which is an order of magnitude faster than scanning every past question.
        self.by_ngram = (
            self.vectorizer.fit_transform([question_text(p.question) for p in kept]).T.tocsr()
            if kept
            else None
        )

    def __len__(self) -> int:
        return len(self.answer_of)

    def suggest(
        self, question: str, k: int = 3, exclude: set[str] | None = None
    ) -> list[Suggestion]:
        if self.by_ngram is None:
            return []
        vector = self.vectorizer.transform([question_text(question)])
        scores = (vector @ self.by_ngram).toarray().ravel()
        count = min(NEIGHBOURS, scores.size)
        nearest = np.argpartition(-scores, count - 1)[:count]
        votes: dict[int, float] = {}
        for row in nearest:
            if scores[row] <= 0:
                continue
            template = int(self.answer_of_array[row])
            votes[template] = votes.get(template, 0.0) + float(scores[row])
        ranked = sorted(votes.items(), key=lambda item: -item[1])
        chosen = [
            Suggestion(self.templates[t], round(v, 3))
            for t, v in ranked
            if not exclude or self.templates[t] not in exclude
        ]
        return chosen[:k]


_cache: dict[int, tuple[float, ReplyIndex]] = {}
_rebuilding: set[int] = set()
_cache_lock = threading.Lock()


def account_index(account_id: int, workspace_id: int) -> ReplyIndex:
    """The index of one brand account's past replies, kept per process.

    Built on first use; afterwards, once older than a few minutes, it is rebuilt in the
    background while the old one keeps answering, so no page waits for a rebuild.
    """
    with _cache_lock:
        cached = _cache.get(account_id)
        stale = cached is None or time.monotonic() - cached[0] > INDEX_TTL_SECONDS
        start_rebuild = cached is not None and stale and account_id not in _rebuilding
        if start_rebuild:
            _rebuilding.add(account_id)
    if cached is None:
        return _build(account_id, workspace_id)
    if start_rebuild:
        threading.Thread(
            target=_rebuild_in_background, args=(account_id, workspace_id), daemon=True
        ).start()
    return cached[1]


def clear_indexes() -> None:
    with _cache_lock:
        _cache.clear()


def _build(account_id: int, workspace_id: int) -> ReplyIndex:
    index = ReplyIndex(stored_pairs(account_id, workspace_id))
    with _cache_lock:
        _cache[account_id] = (time.monotonic(), index)
    return index


def _rebuild_in_background(account_id: int, workspace_id: int) -> None:
    try:
        _build(account_id, workspace_id)
    finally:
        with _cache_lock:
            _rebuilding.discard(account_id)
        connection.close()  # this thread's own connection


def stored_pairs(account_id: int, workspace_id: int) -> list[Pair]:
    rows = (
        Post.objects.in_workspace(workspace_id)
        .filter(account_id=account_id, direction=Direction.OUTBOUND, parent__isnull=False)
        .filter(parent__direction=Direction.INBOUND)
        .order_by("-created_at")
        .values_list("parent__text", "text", "parent__author__name")[:MAX_PAIRS]
    )
    return [Pair(question, answer, name) for question, answer, name in rows]


def suggest_for(
    conversation: Conversation, agent: User, k: int = 3, thread: list[Message] | None = None
) -> list[str]:
    """Ready-to-send suggestions for the conversation's last customer message.

    ``thread``, the conversation's messages in order with their posts, saves reading them
    again when the page has them already.
    """
    if thread is None:
        thread = list(conversation.messages.select_related("post").order_by("created_at", "pk"))
    inbound = [message for message in thread if message.direction == Direction.INBOUND]
    if not inbound:
        return []
    last = inbound[-1]
    own_answers = {
        template_of(message.post.text, conversation.customer.name)
        for message in thread
        if message.direction == Direction.OUTBOUND
    }
    index = account_index(conversation.account_id, conversation.workspace_id)
    values = variables.values_for(conversation, agent)
    return [
        variables.fill(s.template, values)
        for s in index.suggest(last.post.text, k=k, exclude=own_answers)
    ]
