"""Copy the third-party corpora that training needs into ``relais/nlp/data`` (developer tool).

The product never reads the source folder: this script is run once by a developer, with the
source folder given on the command line, and its output (gzipped JSON lines, customer handles
pseudonymised) is what ``relais nlp train`` and ``relais nlp evaluate`` read.

    python -m relais.nlp.data_import /path/to/shared/data
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
UMSAB_LANGS = {
    "arabic": "ar",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}
SENTIMENT_BY_ID = {"0": "negative", "1": "neutral", "2": "positive"}
# Brand and institutional accounts keep their handle; every other handle becomes @user.
PUBLIC_HANDLES = frozenset(
    {
        "free", "freebox", "free_1337", "freemobile", "universfreebox", "oqeebyfree",
        "groupeiliad", "bouyguestelecom", "orange_france", "orange", "orange_conseil", "sfr",
        "sosh_fr", "canalplus", "arcep", "ufcquechoisir", "dgccrf", "60millions", "starlink",
        "xpfibre", "bfmtv", "zoneadsl_panne", "infoabonnecanal", "eurosport_fr",
        "united", "usairways", "americanair", "southwestair", "jetblue", "virginamerica", "delta",
    }
)  # fmt: skip
HANDLE = re.compile(r"@(\w+)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
AIRLINE_TEST_SHARE = 5  # one tweet id in five (by hash) is held out


def pseudonymise(text: str, brand_handles: frozenset[str] = PUBLIC_HANDLES) -> str:
    """Replace customer handles by @user; numeric handles (already anonymised ids) too."""

    def keep_or_mask(match: re.Match[str]) -> str:
        handle = match.group(1)
        return match.group(0) if handle.lower() in brand_handles else "@user"

    return HANDLE.sub(keep_or_mask, EMAIL.sub("__email__", text))


def is_airline_test(tweet_id: str) -> bool:
    """The fixed airline split: held out when sha1(tweet_id) is divisible by 5."""
    return (
        int(hashlib.sha1(tweet_id.encode(), usedforsecurity=False).hexdigest(), 16)
        % AIRLINE_TEST_SHARE
        == 0
    )


def write_jsonl_gz(name: str, rows: Iterable[dict[str, object]]) -> None:
    path = DATA_DIR / name
    # mtime=0 keeps the gzip bytes identical from one import to the next.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        count = 0
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
            count += 1
    print(f"{name}: {count} rows")


def semeval_rows(source: Path) -> Iterator[dict[str, object]]:
    path = source / "semeval2017-task4a-english-train/semeval2013-2016_task4A_train_dedup.tsv"
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield {
                "text": pseudonymise(row["text"], frozenset()),
                "label": row["label"],
                "in_tweeteval_val": row["in_tweeteval_val"] == "1",
                "source_file": row["source_file"],
            }


def tweeteval_rows(source: Path) -> Iterator[dict[str, object]]:
    folder = source / "tweeteval/sentiment"
    for split in ("val", "test"):
        texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
        labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
        for text, label in zip(texts, labels, strict=False):
            yield {"split": split, "text": text, "label": SENTIMENT_BY_ID[label]}


def umsab_rows(source: Path) -> Iterator[dict[str, object]]:
    for folder_name, lang in UMSAB_LANGS.items():
        folder = source / "xlm-t-multilingual-tweet-sentiment" / folder_name
        for split in ("train", "val", "test"):
            texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
            labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
            for text, label in zip(texts, labels, strict=False):
                yield {"lang": lang, "split": split, "text": text, "label": SENTIMENT_BY_ID[label]}


def airline_rows(source: Path) -> Iterator[dict[str, object]]:
    path = source / "twitter-us-airline-sentiment/Tweets.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield {
                "tweet_id": row["tweet_id"],
                "split": "test" if is_airline_test(row["tweet_id"]) else "train",
                "airline": row["airline"],
                "text": pseudonymise(row["text"]),
                "label": row["airline_sentiment"],
                "reason": row["negativereason"] or None,
            }


def free_rows(source: Path) -> Iterator[dict[str, object]]:
    """Customer posts of the Free threads (brand replies and retweets left out)."""
    path = source / "french-free-customer-care-threads/free_tweet_export.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            text = row["full_text"].replace("\\n", "\n")
            if row["screen_name"].lower() in PUBLIC_HANDLES or text.startswith("RT @"):
                continue
            yield {"id": f"free-{row['id']}", "text": pseudonymise(text)}


def twcs_rows(source: Path) -> Iterator[dict[str, object]]:
    """Inbound (customer) posts of the TWCS sample; brand handles are not numeric."""
    path = source / "customer-support-on-twitter-sample/twcs_head5000.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["inbound"] != "True" or not row["created_at"]:
                continue
            brands = frozenset(h.lower() for h in HANDLE.findall(row["text"]) if not h.isdigit())
            yield {"id": f"twcs-{row['tweet_id']}", "text": pseudonymise(row["text"], brands)}


TWEETEVAL_OTHER_TASKS = ("emotion", "hate", "irony", "offensive")


def unlabelled_en_rows(source: Path) -> Iterator[dict[str, object]]:
    """English tweets without sentiment labels, for the teacher to label: the customers' posts
    of the TWCS sample, the Sentiment140 subset (2009; its emoticon labels are not kept) and the
    texts of TweetEval's other tasks (2016-2019). Exact duplicates and any text of the
    sentiment sets are left out, so no TweetEval sentiment val or test tweet reaches training
    this way."""
    sentiment_sets = {comparable(str(r["text"])) for r in tweeteval_rows(source)}
    sentiment_sets |= {comparable(str(r["text"])) for r in semeval_rows(source)}
    batches = [("twcs", [str(row["text"]) for row in twcs_rows(source)])]
    folder = source / "sentiment140-100k-subset"
    for name in ("negative", "positive"):
        lines = (folder / f"{name}.txt").read_text(encoding="utf-8").split("\n")
        batches.append(("sentiment140", [_masked(line) for line in lines]))
    for task in TWEETEVAL_OTHER_TASKS:
        for split in ("train", "val", "test"):
            path = source / "tweeteval" / task / f"{split}_text.txt"
            lines = path.read_text(encoding="utf-8").split("\n")
            batches.append((f"tweeteval_{task}", [_masked(line) for line in lines]))
    seen: set[str] = set()
    for name, texts in batches:
        for text in texts:
            if text.strip() and text.strip().lower() not in seen:
                seen.add(text.strip().lower())
                if comparable(text) not in sentiment_sets:
                    yield {"source": name, "text": text.strip()}


def comparable(text: str) -> str:
    """The form in which two copies of a tweet compare equal whatever their source's escaping,
    masking of handles or case."""
    return _masked(text).strip().lower()


def _masked(text: str) -> str:
    """Sentiment140 keeps HTML entities and real handles; TweetEval is already masked."""
    return pseudonymise(html.unescape(text), frozenset())


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    DATA_DIR.mkdir(exist_ok=True)
    write_jsonl_gz("semeval_en.jsonl.gz", semeval_rows(source))
    write_jsonl_gz("tweeteval_sentiment.jsonl.gz", tweeteval_rows(source))
    write_jsonl_gz("umsab.jsonl.gz", umsab_rows(source))
    write_jsonl_gz("airline.jsonl.gz", airline_rows(source))
    write_jsonl_gz("traffic_fr.jsonl.gz", free_rows(source))
    write_jsonl_gz("traffic_en.jsonl.gz", twcs_rows(source))
    write_jsonl_gz("unlabelled_en.jsonl.gz", unlabelled_en_rows(source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
