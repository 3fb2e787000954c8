"""One hashed featurisation pass shared by every head: character n-grams plus word uni/bigrams.

Everything is vectorised over the whole batch with numpy: texts are joined into one array of
code points and every n-gram's hash is read off a polynomial prefix hash in O(1), so the cost
per post is a handful of array operations instead of a Python loop over n-grams. The hash
depends only on the code points (never on Python's randomised ``hash``), so features are the
same in every process and on every machine.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

MAX_CHARS = 1000  # longer posts are cut: sentiment and intent are decided early in a post
# The look-ahead lets the regular expression engine skip every position that cannot start one.
URL = re.compile(r"(?=[hw])(?:https?://\S*|\bwww\.\S+|\bhttp\b)")
HANDLE = re.compile(r"@\w+")
DIGITS = re.compile(r"\d")
# Zero-width, bidi and other format characters carry no meaning for classification.
INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
MAX_REPEATS = 3  # "soooooo" and "sooo" are one feature
SEPARATOR = 10  # newline: posts are joined by it, and no n-gram may span it

BASE = np.uint64(0x100000001B3)  # odd, so it has an inverse modulo 2**64
BASE_INVERSE = np.uint64(pow(int(BASE), -1, 2**64))
MIX = np.uint64(0x9E3779B97F4A7C15)
CHAR_NGRAM_SIZES = (1, 2, 3, 4, 5)
WORD_SALT = np.uint64(0xD6E8FEB86659FD93)
BIGRAM_SALT = np.uint64(0xA0761D6478BD642F)
# The first word of a post also counts on its own: a post opening on a handle is addressed to
# someone (care traffic), and openers such as "rt", "thanks" or "why" carry intent.
FIRST_WORD_SALT = np.uint64(0xE7037ED1A0B428DB)


Tokens = tuple[np.ndarray, np.ndarray]  # (post of each token, its hash or bucket)


@dataclass(frozen=True)
class FeatureConfig:
    bits: int = 20


def normalise_batch(texts: list[str]) -> str:
    """Lower-case, mask handles/links/digits the way the training corpora do, cap the length,
    and turn each run of white space into one space (none at either end of a post).

    Works on all posts joined by newlines (each post's own line breaks become spaces), so each
    regular expression runs once per batch instead of once per post.
    """
    joined = "\n".join(t[:MAX_CHARS].replace("\n", " ").replace("\r", " ") for t in texts)
    joined = INVISIBLE.sub("", joined)
    joined = URL.sub(" http ", joined)
    joined = HANDLE.sub("@user", joined)
    joined = DIGITS.sub("0", joined.lower())
    return "\n".join(" ".join(post.split()) for post in joined.split("\n"))


@lru_cache(maxsize=1)
def _plain_word_char_table() -> np.ndarray:
    """Boolean table over all code points: letters, digits and marks, the characters of a
    dictionary word ("l'avion" is "l" and "avion", "#génial" is "génial")."""
    table = np.zeros(0x110000, dtype=bool)
    for start, end in ((0x30, 0x3A), (0x41, 0x5B), (0x61, 0x7B), (0xC0, 0x250), (0x370, 0x1000)):
        table[start:end] = True
    for code in range(0x370, 0x1000):
        category = unicodedata.category(chr(code))
        table[code] = category[0] in "LMN"
    table[0xD7] = table[0xF7] = False
    return table


@lru_cache(maxsize=1)
def _word_char_table() -> np.ndarray:
    """The plain word characters plus those that glue a word for the hashed features: "j'adore",
    "#fail" and "@user" are one feature each."""
    table = _plain_word_char_table().copy()
    table[[ord("_"), ord("'"), ord("\u2019"), ord("#"), ord("@")]] = True
    return table


@lru_cache(maxsize=4)
def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i modulo 2**64 for i < length (uint64 arithmetic wraps)."""
    up = np.full(length, BASE, dtype=np.uint64)
    up[0] = 1
    down = np.full(length, BASE_INVERSE, dtype=np.uint64)
    down[0] = 1
    return np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64)


def _encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Code points of the joined batch and, per position, how many posts end before it."""
    joined = f" {normalise_batch(texts).replace(chr(10), ' ' + chr(10) + ' ')} "
    # 'replace' turns lone surrogates into '?' instead of raising.
    codes = np.frombuffer(joined.encode("utf-32-le", "replace"), dtype=np.uint32)
    codes = codes[_within_repeat_limit(codes)]
    boundaries = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(codes == SEPARATOR, out=boundaries[1:])
    return codes.astype(np.uint64), boundaries


def _within_repeat_limit(codes: np.ndarray) -> np.ndarray:
    """Mask keeping the first MAX_REPEATS characters of every run of one character (never
    dropping a separator between posts)."""
    keep = np.ones(len(codes), dtype=bool)
    repeated = codes[MAX_REPEATS:] != SEPARATOR
    for back in range(1, MAX_REPEATS + 1):
        repeated &= codes[MAX_REPEATS:] == codes[MAX_REPEATS - back : len(codes) - back]
    keep[MAX_REPEATS:] = ~repeated
    return keep


def _bucket(hashes: np.ndarray, salt: np.uint64, bits: int) -> np.ndarray:
    mixed = (hashes ^ salt) * MIX
    mixed ^= mixed >> np.uint64(31)
    mixed *= MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int32)


def _round_up(size: int) -> int:
    """Cache power tables at a few sizes instead of one per batch length."""
    return 1 << max(16, (size - 1).bit_length())


class _PrefixHash:
    """Position-independent polynomial hash of any span [start, end) of the joined code points."""

    def __init__(self, codes: np.ndarray) -> None:
        size = len(codes) + 1
        up, down = _powers(_round_up(size))
        self.up = up
        self.prefix = np.zeros(size, dtype=np.uint64)
        np.cumsum((codes + np.uint64(1)) * down[: len(codes)], dtype=np.uint64, out=self.prefix[1:])

    def span(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return (self.prefix[end] - self.prefix[start]) * self.up[start]


def _char_ngrams(hasher: _PrefixHash, boundaries: np.ndarray, bits: int) -> Tokens:
    """(post, bucket) of every character n-gram, ordered by post."""
    total = len(boundaries) - 1
    start = np.arange(total)
    # Filled column by column, read row by row: n-grams come out grouped by starting position.
    columns = np.empty((total, len(CHAR_NGRAM_SIZES)), dtype=np.int32)
    keep = np.empty((total, len(CHAR_NGRAM_SIZES)), dtype=bool)
    for index, size in enumerate(CHAR_NGRAM_SIZES):
        end = np.minimum(start + size, total)
        columns[:, index] = _bucket(hasher.span(start, end), np.uint64(size), bits)
        keep[:, index] = (start + size <= total) & (boundaries[end] == boundaries[start])
    rows = np.repeat(boundaries[:-1], len(CHAR_NGRAM_SIZES))
    return rows[keep.ravel()], columns.ravel()[keep.ravel()]


def _words(
    codes: np.ndarray, hasher: _PrefixHash, boundaries: np.ndarray, table: np.ndarray
) -> Tokens:
    """(post, hash) of every word token (a run of the ``table``'s characters), ordered by post."""
    edges = np.diff(table[codes].astype(np.int8), prepend=0, append=0)
    start = np.flatnonzero(edges == 1)
    end = np.flatnonzero(edges == -1)
    return boundaries[start], hasher.span(start, end)


def _word_ngrams(words: Tokens, bits: int) -> Tokens:
    """(post, bucket) of every word, word pair and first word, ordered by post."""
    rows, hashes = words
    next_words = np.zeros_like(hashes)
    next_words[:-1] = hashes[1:]
    has_next = np.zeros(len(hashes), dtype=bool)
    has_next[:-1] = rows[1:] == rows[:-1]
    unigrams = _bucket(hashes, WORD_SALT, bits)
    bigrams = _bucket(hashes * BIGRAM_SALT + next_words, BIGRAM_SALT, bits)
    is_first = np.ones(len(hashes), dtype=bool)
    is_first[1:] = rows[1:] != rows[:-1]
    first_words = _bucket(hashes, FIRST_WORD_SALT, bits)
    keep = np.stack([np.ones_like(has_next), has_next, is_first], axis=1).ravel()
    buckets = np.stack([unigrams, bigrams, first_words], axis=1).ravel()
    return np.repeat(rows, 3)[keep], buckets[keep]


def word_bucket(word: str, bits: int) -> int | None:
    """The bucket of ``word``'s word-unigram feature, or None unless ``word`` is exactly one
    word token that normalisation leaves unchanged (so a post containing it hits that bucket)."""
    if not word or normalise_batch([word]) != word:
        return None
    codes, boundaries = _encode([word])
    inner = codes[1:-1]  # _encode pads the batch with one space at either end
    if len(inner) != len(word) or not _word_char_table()[inner].all():
        return None
    _, hashes = _words(codes, _PrefixHash(codes), boundaries, _word_char_table())
    return int(_bucket(hashes, WORD_SALT, bits)[0])


def is_plain_word(word: str) -> bool:
    """Whether ``word`` is one plain word (letters, digits, marks) left unchanged by
    normalisation: exactly what one entry of ``featurise_with_unigrams`` can match."""
    codes = np.frombuffer(word.encode("utf-32-le", "replace"), dtype=np.uint32)
    return (
        bool(word)
        and normalise_batch([word]) == word
        and bool(_plain_word_char_table()[codes].all())
    )


def _merge_by_post(first: Tokens, second: Tokens, posts: int) -> tuple[np.ndarray, np.ndarray]:
    """Interleave two post-ordered streams into one (a linear-time merge, no sort)."""
    first_counts = np.bincount(first[0], minlength=posts)
    second_counts = np.bincount(second[0], minlength=posts)
    indptr = np.zeros(posts + 1, dtype=np.int64)
    np.cumsum(first_counts + second_counts, out=indptr[1:])
    first_ptr = np.cumsum(first_counts) - first_counts
    second_ptr = np.cumsum(second_counts) - second_counts
    columns = np.empty(indptr[-1], dtype=np.int32)
    first_at = indptr[first[0]] + np.arange(len(first[0])) - first_ptr[first[0]]
    second_at = indptr[second[0]] + first_counts[second[0]] + np.arange(len(second[0]))
    second_at -= second_ptr[second[0]]
    columns[first_at] = first[1]
    columns[second_at] = second[1]
    return indptr, columns


def featurise(texts: list[str], config: FeatureConfig = FeatureConfig()) -> sp.csr_matrix:
    """Sparse matrix (posts x 2**bits) of n-gram counts, each row scaled to about unit norm.

    Repeated n-grams are left as duplicate entries (a product with a weight matrix adds them
    up); call ``sum_duplicates`` before handing the matrix to a trainer.
    """
    if not texts:
        return sp.csr_matrix((0, 1 << config.bits), dtype=np.float32)
    codes, boundaries = _encode(texts)
    return _hashed_features(codes, _PrefixHash(codes), boundaries, len(texts), config.bits)


def featurise_with_unigrams(
    texts: list[str], config: FeatureConfig = FeatureConfig()
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``featurise``'s matrix and, from the same pass, the posts' plain word unigrams (posts x
    2**bits, one entry of 1 per plain word, unscaled; "l'avion" is "l" and "avion" there):
    what a per-word table (relais.nlp.wordvectors) averages over."""
    shape = (len(texts), 1 << config.bits)
    if not texts:
        empty = sp.csr_matrix(shape, dtype=np.float32)
        return empty, empty
    codes, boundaries = _encode(texts)
    hasher = _PrefixHash(codes)
    features = _hashed_features(codes, hasher, boundaries, len(texts), config.bits)
    plain_words = _words(codes, hasher, boundaries, _plain_word_char_table())
    return features, _unigram_matrix(plain_words, len(texts), config.bits)


def _hashed_features(
    codes: np.ndarray, hasher: _PrefixHash, boundaries: np.ndarray, posts: int, bits: int
) -> sp.csr_matrix:
    chars = _char_ngrams(hasher, boundaries, bits)
    words = _words(codes, hasher, boundaries, _word_char_table())
    indptr, columns = _merge_by_post(chars, _word_ngrams(words, bits), posts)
    counts = np.diff(indptr)
    scale = (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    values = np.repeat(scale, counts)
    return sp.csr_matrix((values, columns, indptr), shape=(posts, 1 << bits))


def _unigram_matrix(words: Tokens, posts: int, bits: int) -> sp.csr_matrix:
    rows, hashes = words
    indptr = np.zeros(posts + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=posts), out=indptr[1:])
    values = np.ones(len(rows), dtype=np.float32)
    buckets = _bucket(hashes, WORD_SALT, bits)
    return sp.csr_matrix((values, buckets, indptr), shape=(posts, 1 << bits))


def coarsen(matrix: sp.csr_matrix, bits: int) -> sp.csr_matrix:
    """The same features hashed into 2**bits buckets (bits <= the matrix's own).

    A bucket is the top bits of the mixed hash, so the coarse bucket of an n-gram is its fine
    bucket shifted right: featurising once at the finest size serves every head.
    """
    shift = (matrix.shape[1] - 1).bit_length() - bits
    if shift == 0:
        return matrix
    columns = matrix.indices >> shift
    return sp.csr_matrix((matrix.data, columns, matrix.indptr), shape=(matrix.shape[0], 1 << bits))
