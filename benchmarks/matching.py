"""Listening matcher throughput on real posts against 1,000 generated queries.

Usage: .venv/bin/python benchmarks/matching.py [--quick] [--data DIR]

Measures, on one core, posts per second for the indexed Matcher and, beside it in the same run, for
two naive methods: (a) one big alternation regex over every query term, then a check of the queries
owning the terms found; (b) every query evaluated on every post. Checks that all three agree, and
times the compilation of 1,000 and 10,000 queries. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relais.listening.matcher import (
    MatchablePost,
    Matcher,
    TokenizedPost,
    evaluate,
    tokenize_post,
)
from relais.listening.query import (
    And,
    AuthorFilter,
    Hashtag,
    LangFilter,
    Mention,
    NetworkFilter,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Word,
    parse_query,
    tokenize,
)

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
AIRLINE_CSV = Path("twitter-us-airline-sentiment/Tweets.csv")
SUPPORT_CSV = Path("customer-support-on-twitter-sample/twcs_head5000.csv")
SEED = 20150222
QUERY_COUNT = 1_000
NETWORKS = ("x", "bluesky", "mastodon")
# Languages spread over the posts so that lang: filters select something; the texts are English.
LANGUAGES = ("en", "en", "en", "fr")
COMMON_WORDS_SKIPPED = 150


def load_posts(data_dir: Path) -> list[MatchablePost]:
    rng = random.Random(SEED)
    posts = []
    for relative, author_column in ((AIRLINE_CSV, "name"), (SUPPORT_CSV, "author_id")):
        with (data_dir / relative).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if not row.get("text"):
                    continue
                posts.append(
                    MatchablePost(
                        text=row["text"],
                        lang=rng.choice(LANGUAGES),
                        network=rng.choice(NETWORKS),
                        author_handle=row[author_column],
                    )
                )
    return posts


class Vocabulary:
    """Terms a community manager would plausibly watch, drawn from the corpus itself."""

    def __init__(self, posts: Sequence[MatchablePost]) -> None:
        token_lists = [tokenize(post.text) for post in posts]
        counts = Counter(token for tokens in token_lists for token in tokens)
        ranked = [token for token, _ in counts.most_common()]
        common = set(ranked[:COMMON_WORDS_SKIPPED])
        self.handles = [t for t in ranked if t[0] == "@" and counts[t] >= 3][:400]
        self.hashtags = [t for t in ranked if t[0] == "#" and counts[t] >= 2][:400]
        self.words = [
            t
            for t in ranked[COMMON_WORDS_SKIPPED:]
            if t.isalpha() and len(t) >= 4 and counts[t] >= 3
        ][:3000]
        self.stems = sorted({word[: len(word) - 2] for word in self.words if len(word) >= 7})
        bigrams = Counter(
            (first, second)
            for tokens in token_lists
            for first, second in itertools.pairwise(tokens)
            if first.isalpha() and second.isalpha() and not {first, second} <= common
        )
        self.phrases = [f"{a} {b}" for (a, b), count in bigrams.most_common(2000) if count >= 3]
        authors = Counter(post.author_handle for post in posts if post.author_handle)
        self.authors = [a for a, count in authors.most_common(300) if count >= 3 and a.isalnum()]


def query_texts(vocabulary: Vocabulary, count: int) -> list[str]:
    """Realistic query shapes: brand watch, complaints, competitor, campaign, own account."""
    rng = random.Random(SEED)
    v = vocabulary

    def pick(items: list[str]) -> str:
        return rng.choice(items)

    shapes: list[Callable[[], str]] = [
        lambda: f'{pick(v.handles)} OR #{pick(v.hashtags)[1:]} OR "{pick(v.phrases)}"',
        lambda: f'({pick(v.words)} OR "{pick(v.phrases)}") AND NOT {pick(v.stems)}*',
        lambda: f"{pick(v.handles)} ({pick(v.stems)}* OR {pick(v.words)}) lang:en",
        lambda: f"({pick(v.hashtags)} OR {pick(v.words)}) NOT {pick(v.words)}",
        lambda: f'"{pick(v.phrases)}" lang:fr',
        lambda: f"from:@{pick(v.authors)} ({pick(v.words)} OR {pick(v.stems)}*)",
        lambda: f"{pick(v.words)} {pick(v.words)}",
        lambda: f'({pick(v.handles)} OR {pick(v.hashtags)}) network:x NOT "{pick(v.phrases)}"',
        lambda: f"{pick(v.handles)} {pick(v.words)} OR {pick(v.handles)} {pick(v.stems)}*",
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def query_terms(node: Node) -> list[Node]:
    """Every term and author filter of a query, negated or not."""
    match node:
        case Not(operand):
            return query_terms(operand)
        case And(operands) | Or(operands):
            return [term for operand in operands for term in query_terms(operand)]
        case LangFilter() | NetworkFilter():
            return []
    return [node]


class RegexThenCheck:
    """Naive method (a): one alternation of every term finds the relevant tokens of a post in one
    pass; the queries owning those terms are then evaluated one by one."""

    def __init__(self, queries: Sequence[Query]) -> None:
        self.queries = queries
        self.by_token: dict[str, set[int]] = {}
        self.by_stem: dict[str, set[int]] = {}
        self.by_author: dict[str, set[int]] = {}
        for index, query in enumerate(queries):
            for term in query_terms(query.root):
                self._file(term, index)
        whole_tokens = sorted(self.by_token, key=len, reverse=True)
        alternatives = [re.escape(token) for token in whole_tokens]
        alternatives += [re.escape(stem) + r"[^ ]*" for stem in sorted(self.by_stem)]
        # Every alternative spans exactly one whole token of the space-joined token string.
        self.pattern = re.compile(r"(?<![^ ])(?:" + "|".join(alternatives) + r")(?![^ ])")

    def _file(self, term: Node, index: int) -> None:
        match term:
            case Word(text):
                self.by_token.setdefault(text, set()).add(index)
            case Hashtag(tag):
                self.by_token.setdefault("#" + tag, set()).add(index)
            case Mention(handle):
                self.by_token.setdefault("@" + handle, set()).add(index)
            case Phrase(tokens):
                self.by_token.setdefault(tokens[0], set()).add(index)
            case Prefix(stem):
                self.by_stem.setdefault(stem, set()).add(index)
            case AuthorFilter(handle):
                self.by_author.setdefault(handle, set()).add(index)

    def match(self, post: MatchablePost) -> list[int]:
        tokenized = tokenize_post(post)
        candidates = set(self.by_author.get(tokenized.author, ()))
        for found in self.pattern.findall(" ".join(tokenized.tokens)):
            candidates.update(self.by_token.get(found, ()))
            for stem, owners in self.by_stem.items():
                if found.startswith(stem):
                    candidates.update(owners)
        return [i for i in sorted(candidates) if evaluate(self.queries[i].root, tokenized)]


def every_query(queries: Sequence[Query], post: MatchablePost) -> list[int]:
    """Naive method (b): tokenize once, then evaluate each query."""
    tokenized: TokenizedPost = tokenize_post(post)
    return [index for index, query in enumerate(queries) if evaluate(query.root, tokenized)]


def posts_per_second(run: Callable[[], object], post_count: int, repeats: int) -> tuple[int, int]:
    """Median rate over the repeats, per CPU second of this process and per wall-clock second.

    CPU time is the per-core figure: on shared, noisy cores wall time also counts the moments the
    process waited for a core.
    """
    cpu, wall = [], []
    for _ in range(repeats):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        run()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return round(post_count / statistics.median(cpu)), round(post_count / statistics.median(wall))


def compile_seconds(texts: Sequence[str]) -> tuple[float, float]:
    started = time.perf_counter()
    parsed = [(index, parse_query(text)) for index, text in enumerate(texts)]
    parsed_at = time.perf_counter()
    Matcher(parsed)
    return parsed_at - started, time.perf_counter() - parsed_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer posts and repeats")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    arguments = parser.parse_args()

    posts = load_posts(arguments.data)
    vocabulary = Vocabulary(posts)
    texts = query_texts(vocabulary, 10 * QUERY_COUNT)
    queries = [parse_query(text) for text in texts[:QUERY_COUNT]]
    matcher = Matcher(list(enumerate(queries)))
    regex_method = RegexThenCheck(queries)

    repeats = 3 if arguments.quick else 7
    timed_posts = posts[:4000] if arguments.quick else posts
    naive_posts = posts[:: 40 if arguments.quick else 10]

    started = time.perf_counter()
    indexed_results = matcher.match_many(timed_posts)
    first_pass_seconds = time.perf_counter() - started
    indexed_rate, indexed_wall_rate = posts_per_second(
        lambda: matcher.match_many(timed_posts), len(timed_posts), repeats
    )
    regex_rate, _ = posts_per_second(
        lambda: [regex_method.match(p) for p in naive_posts], len(naive_posts), 1
    )
    every_rate, _ = posts_per_second(
        lambda: [every_query(queries, p) for p in naive_posts], len(naive_posts), 1
    )

    reference = {id(p): every_query(queries, p) for p in naive_posts}
    indexed_by_post = {
        id(p): result for p, result in zip(timed_posts, indexed_results, strict=True)
    }
    disagreements = sum(
        reference[id(p)] != regex_method.match(p)
        or (id(p) in indexed_by_post and reference[id(p)] != indexed_by_post[id(p)])
        or reference[id(p)] != matcher.match(p)
        for p in naive_posts
    )
    parse_1k, compile_1k = compile_seconds(texts[:QUERY_COUNT])
    parse_10k, compile_10k = compile_seconds(texts)
    matched = sum(1 for result in indexed_results if result)

    print(
        json.dumps(
            {
                "posts_per_second": indexed_rate,
                "wall_clock_posts_per_second": indexed_wall_rate,
                "queries": len(queries),
                "naive_posts_per_second": regex_rate,
                "naive_method": "one alternation regex over all terms, then per-query check",
                "every_query_posts_per_second": every_rate,
                "speedup_over_regex": round(indexed_rate / regex_rate, 1),
                "first_pass_posts_per_second": round(len(timed_posts) / first_pass_seconds),
                "posts_timed": len(timed_posts),
                "posts_checked_by_all_methods": len(naive_posts),
                "methods_agree": disagreements == 0,
                "disagreements": disagreements,
                "posts_with_a_match_share": round(matched / len(timed_posts), 3),
                "matches_per_post": round(sum(map(len, indexed_results)) / len(timed_posts), 3),
                "compile_seconds_1k": round(compile_1k, 4),
                "parse_seconds_1k": round(parse_1k, 4),
                "compile_seconds_10k": round(compile_10k, 4),
                "parse_seconds_10k": round(parse_10k, 4),
                "repeats": repeats,
                "threads": 1,
                "rates_are_per": "CPU second of one thread (median of repeats)",
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
