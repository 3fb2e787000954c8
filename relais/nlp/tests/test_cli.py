from __future__ import annotations

import io
import json
import sys

import pytest

from relais.nlp import MODEL_VERSION
from relais.nlp.cli import main


def test_enrich_adds_fields_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps({"id": 1, "text": "@AmazonHelp my package never arrived"}),
        "not json",
        json.dumps({"id": 2, "text": "broken \ud800"}),
        json.dumps({"id": 3}),
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["enrich"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in records] == [1, 2, 3]
    for record in records:
        assert {"lang", "sentiment", "sentiment_score", "intent", "reason", "entities"} <= set(
            record
        )
        assert record["model_version"] == MODEL_VERSION
    assert records[0]["entities"]["handles"] == ["AmazonHelp"]
