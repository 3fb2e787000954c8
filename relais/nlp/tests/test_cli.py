from __future__ import annotations

import io
import json
import sys

import pytest

from relais.nlp import MODEL_VERSION, cli, train
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


class ProcessReplacedError(Exception):
    """os.execve would have replaced the process."""


def test_train_restarts_itself_with_the_pinned_blas_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        raise ProcessReplacedError(argv, env)

    monkeypatch.setattr(cli.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.setattr(cli.os, "execve", execve)
    with pytest.raises(ProcessReplacedError) as replaced:
        main(["train"])
    argv, env = replaced.value.args
    assert argv[1:] == ["-m", "relais.nlp.cli", "train"]
    assert env["OPENBLAS_CORETYPE"] == "Haswell"


def test_train_runs_in_place_once_the_kernels_are_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[str] = []
    monkeypatch.setattr(cli.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setattr(train, "train", lambda version, log: trained.append(version))
    assert main(["train"]) == 0
    assert trained == [MODEL_VERSION]
