"""Every string the interface shows has a French translation; the compiled catalogue is current.

The strings are collected the way ``makemessages`` finds them (Django's ``templatize`` for
templates, gettext calls for Python), without needing GNU gettext on the machine.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

import polib
import pytest
from django.utils.translation.template import templatize

import relais

PACKAGE = Path(relais.__file__).parent
CATALOGUE = PACKAGE / "locale" / "fr" / "LC_MESSAGES"
GETTEXT_FUNCTIONS = {
    "_",
    "gettext",
    "gettext_lazy",
    "gettext_noop",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}
SKIPPED_FOLDERS = {"tests", "migrations"}


def _sources(pattern: str) -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob(pattern)):
        if not SKIPPED_FOLDERS & set(path.relative_to(PACKAGE).parts):
            yield path


def _msgids_from_call(name: str, literals: list[str]) -> list[str]:
    """The catalogue keys a gettext call creates: contexts are skipped, plurals kept."""
    if name.startswith(("pgettext", "npgettext")):
        literals = literals[1:]
    return literals[:2] if name.startswith(("ngettext", "npgettext")) else literals[:1]


def _python_msgids(path: Path) -> Iterator[tuple[str, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in GETTEXT_FUNCTIONS:
            continue
        literals = [
            arg.value
            for arg in node.args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        for msgid in _msgids_from_call(name, literals):
            yield msgid, f"{path.relative_to(PACKAGE)}:{node.lineno}"


def _template_msgids(path: Path) -> Iterator[tuple[str, str]]:
    code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    for index, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string not in GETTEXT_FUNCTIONS:
            continue
        literals = []
        for following in tokens[index + 2 :]:
            if following.type == tokenize.STRING:
                literals.append(ast.literal_eval(following.string))
            elif following.string == ")":
                break
        for msgid in _msgids_from_call(token.string, literals):
            yield msgid, f"{path.relative_to(PACKAGE)}:{token.start[0]}"


def interface_strings() -> dict[str, str]:
    """Every msgid in the sources, with one place it comes from."""
    found: dict[str, str] = {}
    for path in _sources("*.py"):
        found.update(_python_msgids(path))
    for path in _sources("*.html"):
        found.update(_template_msgids(path))
    return found


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    return polib.pofile(str(CATALOGUE / "django.po"))


def test_every_interface_string_is_translated_into_french(catalogue: polib.POFile) -> None:
    translated = {
        entry.msgid: entry
        for entry in catalogue
        if entry.translated() and not entry.obsolete and "fuzzy" not in entry.flags
    }
    for entry in catalogue:
        if entry.msgid_plural and entry.translated():
            translated[entry.msgid_plural] = entry

    strings = interface_strings()
    missing = {msgid: where for msgid, where in strings.items() if msgid not in translated}

    assert not missing, "untranslated (run `make messages` and translate):\n" + "\n".join(
        f"{where}: {msgid!r}" for msgid, where in sorted(missing.items(), key=lambda i: i[1])
    )


def test_the_compiled_catalogue_matches_its_source(catalogue: polib.POFile) -> None:
    compiled = polib.mofile(str(CATALOGUE / "django.mo"))
    compiled_strings = {entry.msgid: entry.msgstr for entry in compiled if not entry.msgid_plural}
    source_strings = {
        entry.msgid: entry.msgstr
        for entry in catalogue.translated_entries()
        if not entry.msgid_plural and "fuzzy" not in entry.flags
    }

    assert compiled_strings == source_strings, "run `make messages` to compile the catalogue"


def test_the_collector_finds_strings_in_templates_and_python() -> None:
    strings = interface_strings()

    assert "Inbox" in strings  # base.html {% translate %}
    assert "%(followers)s follower" in strings  # {% blocktranslate count %} singular
    assert "%(followers)s followers" in strings  # and its plural
