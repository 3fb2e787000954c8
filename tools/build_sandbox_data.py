"""Rebuild the sandbox replay datasets shipped in relais/sandbox/datasets/.

Developer-only. Reads the raw third-party files under /work/shared/data (never read by the
product), normalizes them to the sandbox row format, pseudonymizes customers and writes
gzipped JSON Lines, byte-identical from run to run (fixed gzip mtime, seeded pseudonyms).

    .venv/bin/python tools/build_sandbox_data.py [--src /work/shared/data] [--out DIR]

Pseudonyms are drawn from a seeded RNG in order of first appearance (never derived from the
original handle), and the mapping lives only in memory: it is never written anywhere.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = Path("/work/shared/data")
TWCS_FILE = "twcs_head5000.csv"
DEFAULT_OUT = ROOT / "relais" / "sandbox" / "datasets"

# A Twitter handle: 1-15 word characters, not glued to a preceding word, e-mail or hashtag.
MENTION_RE = re.compile(r"(?<![A-Za-z0-9_!#$%&*@])@([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])")
TOKEN_RE = re.compile(r"\w+")
WORD_RE = re.compile(r"(?<![A-Za-z0-9_@#])([A-Za-z0-9_]{4,15})(?![A-Za-z0-9_])")

Row = dict[str, Any]


def _words(block: str) -> list[str]:
    return block.split()


# --------------------------------------------------------------------------------------------
# Accounts kept under their real handle. Brand accounts of each set, plus other accounts that
# are clearly organisations (companies, media, airports, public bodies, clubs). People,
# including public figures, are pseudonymized; so is anything we were unsure about.
# --------------------------------------------------------------------------------------------

AIRLINE_BRANDS = ["VirginAmerica", "united", "SouthwestAir", "JetBlue", "USAirways", "AmericanAir"]
AIRLINE_ORGS = """
delta deltaassist virginatlantic spiritairlines aircanada silverairways british_airways ba_usa
staralliance alaskaair flysaa airnzusa hawaiianair westjet flyfrontier allegiantair
allegianttravel cathaypacific cathaypacificus etihad aegeanairlines _austrian capeair skywest
virgin virginmedia americanairbr airtahitinui flyana_official flyrepublicair jetbluecheeps
admiralsclub usairwayscenter traveloneworld
phlairport dfwairport flytpa dulles_airport fly2ohare bostonlogan flylaxairport dallaslovefield
ny_njairports kciairport austinairport flysfo heathrowairport phxskyharbor lasairport
fly_nashville bwi_airport flypdx flyyow denairport fly2midway portcolumbuscmh cvgairport
slcairport fargoairport renoairport zrh_airport airport_fra erieairport goosebayairport
sydneyairport iflyoakland belfastairport bhx_official sacintlairport mitchellairport
chicagomidway cakairport johnwayneair lbairport fllairport tfgreenairport buffaloairport
aruba_airport flyknoxville sdfairport portlandjetport bradley_airport dublinairport
helsinkiairport ashevilleair panynj flyeia
wsj fortunemagazine cnn nytimes usatoday gma thenationaluae latimes chicagotribune cnnbrk
dallas_news cnnmoney foxnews abcnetwork wmcactionnews5 chronicleherald reuters fastcompany
skift atwonline msnbc abc11_wtvd huffpostbiz cbcnews cbcallinaday 9news fox8news
orlandosentinel cbsbaltimore cbsnews cbsphilly bloombergnews bloombergradio cnbc marketwatch
nzherald usatodaytravel suntimes abc7newsbayarea wtop abc cosmopolitan foodnetwork
flightglobal capa_aviation airlinegeeks ubergizmo hemispheresmag iol
tsa faanews thefaaonline iata natca usnavy uschamber the_uso specialolympics nokidhungry
expedia askpaypal paypal comcast directtv directv aarp airbus airbusintheus boeingairplanes
embraersa gopro gogo beatsmusic itunesmusic nascar pgatour theacademy warriors cavs spurs
okcthunder memgrizz nhlbruins nyjets travelzoo visa tinder verizonwireless reebok
tiffanyandco xfinity fedex ups hiltonworldwide marriott marriottrewards renhotels daysinn
intuit tmobile google twitter starbucks samsonite priceline cheapoair skiplagged
hotelstonight flightaware thehipmunk kleankanteen waltdisneyworld disneyland rundisney
universalorl vitaminwater dosequis leinenkugels heinekenusacorp cinnabon citi hp fitbit
askamex amexserve barclaycardus greyhoundbus sxsw medium airfarewatchdog edreams_en
zacks_com renttherunway burningman choosechicago travelportland longbeachcity gastoncounty
bostonbbb bbb_media airlinequality teamtreehouse imaginedragons
"""

FREE_BRANDS = ["Freebox", "free"]
FREE_ORGS = """
freemobile freepro freeboxhome freefoot oqeebyfree groupeiliad fondationfree universfreebox
freenewsactu zoneadsl_panne bouyguestelecom groupebouygues orange orange_france orange_conseil
sfr sfr_sav redbysfr sosh_fr canalplus infoabonnecanal mycanal 60millions arcep arcom_fr dgccrf
ufcquechoisir cnil fftelecoms numerique_gouv solidarite_gouv economie_gouv elysee prefet95
prefet972 prefet78 bfmtv tf1 tf1plus tf1plushelp tf1pro m6 m6plusofficiel lci rmcstory
rmcdecouverte francetv franceculture franceinfo lemondefr le_parisien mediapart numerama
frandroid pressecitron eurosport_fr eurosportfrance dazn_fr primevideofr primevideo netflix
netflixfr disneyplusfr beinsports_fr beinsports equidia lachainelequipe lequipe starlink
xpfibre altitude_infra covageidf_ouest apple applenews samsungfr synology tplink tplinkhelp
playstation nintendofrance nperf fingapp outagedetect psg_inside om_officiel girondins
valorantfr rocketleague fallguysgame dofusfr rockenseine rugbyworldcup rugbyworldcupfr
worldrugby daviscup villedegrigny91 villedeconflans villedaubagne villepoissy villeantony
mairieacheres les_yvelines ldlc materielnet fnac amazonfrance lidlfrance dpd_fr chronopost ups
mistralai notredameparis toonamifr universalplusfr filmotv mtvfr groupesonatel coinprive
zimbra strasbourg canal valorant
"""

# Words that are someone's handle in a set but also ordinary words: when they occur without
# an "@" they are left alone (with an "@" they are still pseudonymized).
BARE_WORD_STOPLIST = frozenset(
    _words(
        """
    love help fare airport airlines business american reagan harris anku unfriendly
    southwest usair jamaica australia orangecounty delk pilot 10am 12am budget durov
    """
    )
)

# --------------------------------------------------------------------------------------------
# Pseudonym generator
# --------------------------------------------------------------------------------------------

EN_FIRST = _words(
    """
James Mary John Patricia Robert Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Chris Karen Daniel Lisa Matthew Nancy Anthony Betty Mark
Sandra Steven Ashley Paul Emily Andrew Donna Joshua Michelle Kevin Carol Brian Amanda George
Melissa Tim Deborah Ryan Rebecca Jacob Laura Gary Sharon Eric Cynthia Jonathan Amy Larry Kathy
Justin Angela Scott Emma Brandon Olivia Ben Hannah Sam Megan Nick Rachel Tyler Chloe Adam Grace
Ethan Zoe Noah Lily Owen Ruby Luke Nora Jack Ella Leo Maya
"""
)
EN_LAST = _words(
    """
Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin
Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green
Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins
Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard
Ward Cox Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders Myers Long Ross Foster
Powell Jenkins Perry Russell Sullivan Fisher Hayes Ford Graham Wallace West Cole Hunt Palmer
"""
)
FR_FIRST = _words(
    """
Léa Emma Chloé Manon Camille Inès Jade Louise Sarah Clara Lucie Juliette Zoé Anaïs Océane Mathilde
Pauline Julie Marion Elodie Céline Sophie Nathalie Isabelle Sandrine Aurélie Émilie Margaux Hélène
Agathe Noémie Lou Maëlle Justine Amandine Lucas Hugo Louis Nathan Enzo Mathis Théo Thomas Antoine
Maxime Nicolas Julien Alexandre Kévin Romain Quentin Clément Baptiste Guillaume Sébastien Pierre
Jérôme Olivier Stéphane Christophe Laurent Benoît François Mickaël Yanis Karim Mehdi Adrien
Florian Jérémy Arnaud Cédric Loïc Gaëtan Rémi Bastien Valentin Damien Fabien Grégory
"""
)
FR_LAST = _words(
    """
Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre
Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre Mercier Dupont
Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc Guérin Muller Henry
Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont Lopez Fontaine Chevalier Robin
Masson Sanchez Gérard Nguyen Boyer Denis Lemaire Duval Joly Gautier Roger Roche Roy Noël Meyer
Lucas Meunier Jean Pérez Marchand Dufour Blanchard Marie Barbier Brun Dumas Brunet Schmitt
Leroux Colin Fernandez Renaud Arnaud Rolland Caron Aubert Giraud Leclerc Vidal Bourgeois
"""
)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z]", "", folded.lower())


@dataclass(slots=True)
class Pseudonymizer:
    """Consistent, seeded pseudonyms; the original -> pseudonym map never leaves memory."""

    seed: str
    first_names: list[str]
    last_names: list[str]
    reserved: set[str]  # lower-cased handles that a pseudonym must never collide with
    reserved_names: set[str] = field(default_factory=set)  # real display names, likewise
    rng: random.Random = field(init=False)
    by_key: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)
    used: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def get(self, original_handle: str) -> tuple[str, str]:
        """(handle, display name) for an original handle, case-insensitive."""
        key = original_handle.lower()
        found = self.by_key.get(key)
        if found is None:
            found = self._new()
            self.by_key[key] = found
        return found

    def has(self, original_handle: str) -> bool:
        return original_handle.lower() in self.by_key

    def _new(self) -> tuple[str, str]:
        while True:
            first = self.rng.choice(self.first_names)
            last = self.rng.choice(self.last_names)
            f, lst = _ascii_slug(first), _ascii_slug(last)
            number = self.rng.randint(1, 99)
            style = self.rng.randrange(4)
            if style == 0:
                handle = f"{f}_{lst}{number}"
            elif style == 1:
                handle = f"{f}{lst}"
            elif style == 2:
                handle = f"{f}_{lst[0]}{number}"
            else:
                handle = f"{lst}_{f}"
            handle = handle[:15]
            name = f"{first} {last[0]}."
            if handle in self.used or handle in self.reserved or name in self.reserved_names:
                continue
            self.used.add(handle)
            return handle, name


# --------------------------------------------------------------------------------------------
# Normalization shared by the three sets
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RawPost:
    """A post after parsing its source format, before pseudonymization."""

    source_id: str
    time: datetime
    kind: str
    handle: str  # original author handle
    name: str  # original display name ("" when the set has none)
    user_id: str  # original user id ("" when the set has none)
    text: str
    in_reply_to: str | None
    lang: str | None
    metrics: dict[str, int]
    labels: dict[str, Any]


@dataclass(slots=True)
class BuildStats:
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    bare_replacements: Counter[str] = field(default_factory=Counter)
    name_replacements: int = 0


@dataclass(slots=True)
class Originals:
    """Original identifiers of pseudonymized people, for the leak check only."""

    handles: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    user_ids: set[str] = field(default_factory=set)


def _word_bounded(literal: str) -> str:
    """Regex for a literal string not glued to letters or digits on either side."""
    return rf"(?<!\w){re.escape(literal)}(?!\w)"


class NameIndex:
    """Find which of many multi-word display names (6+ characters) occur in a text, fast."""

    def __init__(self, names: dict[str, str]) -> None:
        self.by_token: dict[str, list[tuple[str, str]]] = {}
        for name, value in sorted(names.items(), key=lambda kv: (-len(kv[0]), kv[0])):
            tokens = TOKEN_RE.findall(name)
            if len(name) >= 6 and tokens:
                self.by_token.setdefault(tokens[0], []).append((name, value))

    def found_in(self, text: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for token in sorted(set(TOKEN_RE.findall(text))):
            for name, value in self.by_token.get(token, ()):
                if name in text and re.search(_word_bounded(name), text):
                    found.append((name, value))
        return found


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Normalizer:
    """Turns one set's parsed posts into sandbox rows, pseudonymizing people on the way."""

    def __init__(
        self,
        dataset: str,
        posts: list[RawPost],
        *,
        brands: Iterable[str],
        orgs: Iterable[str],
        pseudo: Pseudonymizer,
        stats: BuildStats,
        originals: Originals,
        org_names: dict[str, str],
    ) -> None:
        self.dataset = dataset
        self.posts = sorted(posts, key=lambda p: (p.time, int(p.source_id)))
        self.brand_by_key = {b.lower(): b for b in brands}
        self.kept = {o.lower() for o in orgs} | set(self.brand_by_key)
        self.pseudo = pseudo
        self.stats = stats
        self.originals = originals
        self.org_names = org_names
        self.people = _all_handles(self.posts) - self.kept
        originals.handles.update(self.people)
        # Display names of pseudonymized people, to replace them where texts spell them out.
        self.person_names: dict[str, str] = {}
        for p in self.posts:
            if p.handle.lower() not in self.kept and p.name:
                self.person_names.setdefault(p.handle.lower(), p.name)
        self.full_names = NameIndex(
            {name: person for person, name in self.person_names.items() if " " in name.strip()}
        )

    def display_handle(self, original: str) -> str:
        key = original.lower()
        if key in self.brand_by_key:
            return self.brand_by_key[key]
        if key in self.kept:
            return original
        return self.pseudo.get(original)[0]

    def rewrite_text(self, text: str, author_key: str) -> tuple[str, list[str]]:
        """Pseudonymize people in a text; return it with the handles it mentions."""
        mentions: list[str] = []
        mentioned_people: list[str] = []

        def replace_mention(m: re.Match[str]) -> str:
            original = m.group(1)
            new = self.display_handle(original)
            if new.lower() not in {x.lower() for x in mentions}:
                mentions.append(new)
            if original.lower() not in self.kept:
                mentioned_people.append(original.lower())
            return "@" + new

        text = MENTION_RE.sub(replace_mention, text)

        # The same people written without "@" (e.g. an agent writing "désolés jdupont42").
        def replace_bare(m: re.Match[str]) -> str:
            word = m.group(1)
            low = word.lower()
            if low not in self.people or low in BARE_WORD_STOPLIST or low.isdigit():
                return word
            self.stats.bare_replacements[low] += 1
            return self.pseudo.get(low)[0]

        text = WORD_RE.sub(replace_bare, text)

        # Display names written out: those of the people addressed in this post and of the
        # author (any length), and any other person's multi-word name (e.g. a public figure).
        candidates = [
            (name, person)
            for person in sorted({*mentioned_people, author_key})
            if (name := self.person_names.get(person)) and len(name) >= 4 and name in text
        ]
        candidates += self.full_names.found_in(text)
        for name, person in candidates:
            text, count = re.subn(_word_bounded(name), self.pseudo.get(person)[1], text)
            self.stats.name_replacements += count
        return text, mentions

    def row(self, p: RawPost) -> Row:
        key = p.handle.lower()
        handle = self.display_handle(p.handle)
        if key in self.kept:
            name = self.org_names.get(key) or p.name or handle
        else:
            name = self.pseudo.get(p.handle)[1]
            if p.name:
                self.originals.names.add(p.name)
            if p.user_id:
                self.originals.user_ids.add(p.user_id)
        text, mentions = self.rewrite_text(p.text, key)
        return {
            "id": f"{self.dataset}:{p.source_id}",
            "time": _iso(p.time),
            "kind": p.kind,
            "author": {
                "id": f"{self.dataset}:{handle}",
                "handle": handle,
                "name": name,
                "followers": None,
                "is_brand": key in self.brand_by_key,
            },
            "text": text,
            "in_reply_to": f"{self.dataset}:{p.in_reply_to}" if p.in_reply_to else None,
            "mentions": mentions,
            "lang": p.lang,
            "metrics": p.metrics,
            "labels": p.labels,
        }

    def rows(self) -> list[Row]:
        rows = [self.row(p) for p in self.posts]
        self.stats.rows = len(rows)
        return rows


# --------------------------------------------------------------------------------------------
# Readers, one per source format
# --------------------------------------------------------------------------------------------


def read_airline(path: Path, stats: BuildStats) -> list[RawPost]:
    posts: list[RawPost] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            tweet_id = rec["tweet_id"]
            if tweet_id in seen:
                stats.skipped["duplicate tweet_id (Kaggle file repeats 155 tweets)"] += 1
                continue
            seen.add(tweet_id)
            labels: dict[str, Any] = {
                "airline": rec["airline"],
                "airline_sentiment": rec["airline_sentiment"],
                "airline_sentiment_confidence": float(rec["airline_sentiment_confidence"]),
            }
            if rec["negativereason"]:
                labels["negativereason"] = rec["negativereason"]
                if rec["negativereason_confidence"]:
                    labels["negativereason_confidence"] = float(rec["negativereason_confidence"])
            for gold in ("airline_sentiment_gold", "negativereason_gold"):
                if rec[gold]:
                    labels[gold] = rec[gold]
            text = rec["text"]
            posts.append(
                RawPost(
                    source_id=tweet_id,
                    time=datetime.strptime(rec["tweet_created"], "%Y-%m-%d %H:%M:%S %z"),
                    kind="repost" if text.startswith("RT @") else "post",
                    handle=rec["name"],
                    name="",
                    user_id="",
                    text=text,
                    in_reply_to=None,
                    lang="en",
                    metrics={"reposts": int(rec["retweet_count"])},
                    labels=labels,
                )
            )
    return posts


def _null(value: str) -> str | None:
    return None if value in ("", "null") else value


def read_free(path: Path, stats: BuildStats, names: dict[str, str]) -> list[RawPost]:
    posts: list[RawPost] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for rec in csv.DictReader(fh):
            in_reply_to = _null(rec["in_reply_to"])
            if in_reply_to:
                kind = "reply"
            elif _null(rec["retweeted_status"]):
                kind = "repost"
            elif _null(rec["quoted_status"]):
                kind = "quote"
            else:
                kind = "post"
            metrics = {
                "likes": int(rec["favorite_count"]),
                "reposts": int(rec["retweet_count"]),
                "replies": int(rec["reply_count"]),
                "quotes": int(rec["quote_count"]),
            }
            views = _null(rec["views_count"])
            if views is not None:
                metrics["views"] = int(views)
            names.setdefault(rec["screen_name"].lower(), rec["name"])
            posts.append(
                RawPost(
                    source_id=rec["id"],
                    time=datetime.strptime(rec["created_at"], "%Y-%m-%d %H:%M:%S %z"),
                    kind=kind,
                    handle=rec["screen_name"],
                    name=rec["name"],
                    user_id=rec["user_id"],
                    # The export writes newlines as the two characters "\n".
                    text=rec["full_text"].replace("\\n", "\n"),
                    in_reply_to=in_reply_to,
                    lang="fr",
                    metrics=metrics,
                    labels={},
                )
            )
    return posts


def read_twcs(path: Path, stats: BuildStats) -> list[RawPost]:
    posts: list[RawPost] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            if not rec.get("created_at"):
                stats.skipped["broken CSV row (text spilled into the index column)"] += 1
                continue
            parent = rec["in_response_to_tweet_id"]
            in_reply_to = str(int(float(parent))) if parent else None
            posts.append(
                RawPost(
                    source_id=rec["tweet_id"],
                    time=datetime.strptime(rec["created_at"], "%a %b %d %H:%M:%S %z %Y"),
                    kind="reply" if in_reply_to else "post",
                    handle=rec["author_id"],
                    name="",
                    user_id="",
                    text=rec["text"],
                    in_reply_to=in_reply_to,
                    lang="en",
                    metrics={},
                    labels={},
                )
            )
    return posts


# --------------------------------------------------------------------------------------------
# Output, checks, report
# --------------------------------------------------------------------------------------------


def write_jsonl_gz(rows: list[Row], path: Path) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
            gz.write(line.encode("utf-8") + b"\n")
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def check_leaks(rows: list[Row], originals: Originals, kept: set[str]) -> list[str]:
    """Return problems: any original person handle, name or user id left in the output."""
    problems: list[str] = []
    multiword = NameIndex({n: n for n in originals.names if " " in n.strip()})
    digits_re = re.compile(r"\d{5,}")
    for row in rows:
        author = row["author"]
        if author["handle"].lower() not in kept and (
            author["handle"].lower() in originals.handles or author["name"] in originals.names
        ):
            problems.append(f"{row['id']}: original author identity kept")
        for handle in MENTION_RE.findall(row["text"]):
            if handle.lower() in originals.handles:
                problems.append(f"{row['id']}: original @handle in text")
        for word in WORD_RE.findall(row["text"]):
            low = word.lower()
            if low in originals.handles and low not in BARE_WORD_STOPLIST and not low.isdigit():
                problems.append(f"{row['id']}: original handle as a bare word")
        for mention in row["mentions"]:
            if mention.lower() in originals.handles:
                problems.append(f"{row['id']}: original handle in mentions")
        rest = json.dumps({k: v for k, v in row.items() if k != "id"}, ensure_ascii=False)
        if any(d in originals.user_ids for d in digits_re.findall(rest)):
            problems.append(f"{row['id']}: original user id")
        if multiword.found_in(row["text"]):
            problems.append(f"{row['id']}: original display name in text")
    return problems


def report(name: str, rows: list[Row], stats: BuildStats, data: bytes, problems: list[str]) -> None:
    ids = {r["id"] for r in rows}
    replies = [r for r in rows if r["in_reply_to"]]
    linked = sum(1 for r in replies if r["in_reply_to"] in ids)
    brand_replies = sum(1 for r in replies if r["author"]["is_brand"])
    roots = {r["id"] for r in rows if r["in_reply_to"] in ids}
    parents = {r["in_reply_to"] for r in rows if r["in_reply_to"] in ids}
    threads = len(parents - roots) if parents else 0
    kinds = Counter(r["kind"] for r in rows)
    print(f"[{name}] {len(rows)} rows, {len(data):,} bytes gzipped; kinds {dict(kinds)}")
    for reason, count in stats.skipped.items():
        print(f"[{name}]   skipped {count}: {reason}")
    if not stats.skipped:
        print(f"[{name}]   skipped 0")
    share = f"{linked / len(replies):.1%}" if replies else "n/a"
    print(
        f"[{name}]   replies {len(replies)}, parent present {linked} ({share}); "
        f"threads (roots with replies) {threads}; brand replies {brand_replies}"
    )
    print(
        f"[{name}]   pseudonymized bare-word handles {sum(stats.bare_replacements.values())}, "
        f"display names in text {stats.name_replacements}"
    )
    print(f"[{name}]   leak check: {'OK' if not problems else f'{len(problems)} PROBLEMS'}")
    for problem in problems[:10]:
        print(f"[{name}]     {problem}")


def _all_handles(posts: list[RawPost]) -> set[str]:
    found = {p.handle.lower() for p in posts}
    for p in posts:
        found.update(h.lower() for h in MENTION_RE.findall(p.text))
    return found


def build(src: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    free_names: dict[str, str] = {}
    specs: list[tuple[str, Callable[[BuildStats], list[RawPost]], list[str], list[str], bool]] = [
        (
            "airline",
            lambda s: read_airline(src / "twitter-us-airline-sentiment" / "Tweets.csv", s),
            AIRLINE_BRANDS,
            _words(AIRLINE_ORGS),
            False,
        ),
        (
            "free",
            lambda s: read_free(
                src / "french-free-customer-care-threads" / "free_tweet_export.csv", s, free_names
            ),
            FREE_BRANDS,
            _words(FREE_ORGS),
            True,
        ),
        (
            "twcs",
            lambda s: read_twcs(src / "customer-support-on-twitter-sample" / TWCS_FILE, s),
            [],
            [],
            False,
        ),
    ]
    for name, reader, brands, orgs, french in specs:
        stats = BuildStats()
        posts = reader(stats)
        set_brands = brands
        if name == "twcs":
            # TWCS: brand accounts are the non-inbound authors (already named by Kaggle);
            # customers are Kaggle's numeric ids, which we still turn into readable pseudonyms.
            set_brands = sorted({p.handle for p in posts if not p.handle.isdigit()}, key=str.lower)
        originals = Originals()
        pseudo = Pseudonymizer(
            seed=f"relais-sandbox-{name}-v1",
            first_names=FR_FIRST if french else EN_FIRST,
            last_names=FR_LAST if french else EN_LAST,
            reserved=_all_handles(posts),
            reserved_names={p.name for p in posts if p.name},
        )
        org_names = {k: v for k, v in free_names.items() if k in {o.lower() for o in orgs}}
        rows = Normalizer(
            name,
            posts,
            brands=set_brands,
            orgs=orgs,
            pseudo=pseudo,
            stats=stats,
            originals=originals,
            org_names=org_names,
        ).rows()
        data = write_jsonl_gz(rows, out / f"{name}.jsonl.gz")
        kept = {h.lower() for h in [*set_brands, *orgs]}
        problems = check_leaks(rows, originals, kept)
        report(name, rows, stats, data, problems)
        failures += len(problems)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    failures = build(args.src, args.out)
    if failures:
        print(f"FAILED: {failures} leak-check problems", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
