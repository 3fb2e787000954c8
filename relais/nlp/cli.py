"""`relais nlp train | evaluate [--json] | enrich`: the operations of the enrichment models."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys

from relais.nlp import MODEL_VERSION

JSON_KEYS = (
    "tweeteval_sentiment_macro_recall",
    "umsab_fr_macro_f1",
    "airline_accuracy",
    "langid_accuracy",
    "posts_per_second_one_core",
)
BARS = {
    "tweeteval_sentiment_macro_recall": 65.0,
    "umsab_fr_macro_f1": 62.0,
    "airline_accuracy": 82.0,
    "langid_accuracy": 97.0,
    "posts_per_second_one_core": 10_000.0,
}
ENRICH_BATCH = 1000
# OpenBLAS picks its matrix kernels for the CPU when numpy loads, and the English expert's
# training (relais.nlp.mlp) amplifies their last-bit differences: the same commit trained on an
# AVX-512 machine and on an AVX2 one gave different experts. Training pins the AVX2 kernels,
# which every x86-64 CPU of the last ten years runs, so that artifacts are byte-identical.
TRAINING_BLAS_CORE = {"OPENBLAS_CORETYPE": "Haswell"}


def run_train(_: argparse.Namespace) -> int:
    if (
        platform.machine() in {"x86_64", "AMD64"}
        and not TRAINING_BLAS_CORE.items() <= os.environ.items()
    ):
        # numpy is loaded already: only a new process takes the pinned kernels.
        command = [sys.executable, "-m", "relais.nlp.cli", "train"]
        os.execve(sys.executable, command, {**os.environ, **TRAINING_BLAS_CORE})  # noqa: S606
    from relais.nlp import train

    train.train(MODEL_VERSION, log=lambda line: print(line, file=sys.stderr))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from relais.nlp import evaluate
    from relais.nlp.enrich import enrich_with
    from relais.nlp.model import shipped

    model = shipped()
    figures = evaluate.quality(model)
    figures["posts_per_second_one_core"] = evaluate.posts_per_second(
        lambda texts: enrich_with(model, texts), evaluate.throughput_texts()
    )
    if args.json:
        print(json.dumps({"model_version": model.version, **figures}, sort_keys=True))
        return 0
    print(f"{'figure':45} {'measured':>10} {'bar':>10}")
    for name, value in figures.items():
        bar = BARS.get(name)
        print(f"{name:45} {value:>10} {'' if bar is None else bar:>10}")
    return 0


def run_enrich(_: argparse.Namespace) -> int:
    """JSON lines in, the same lines out with the enrichment fields added; bad lines are skipped
    with a message on stderr so one broken record does not stop a batch."""
    batch: list[dict[str, object]] = []
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"line {number}: not JSON ({error})", file=sys.stderr)
            continue
        batch.append(record if isinstance(record, dict) else {"text": ""})
        if len(batch) >= ENRICH_BATCH:
            _write_enriched(batch)
            batch = []
    _write_enriched(batch)
    return 0


def _write_enriched(records: list[dict[str, object]]) -> None:
    from relais.nlp import enrich_texts

    texts = [str(record.get("text") or "") for record in records]
    for record, enrichment in zip(records, enrich_texts(texts), strict=True):
        record.update(dataclasses.asdict(enrichment))
        record["model_version"] = MODEL_VERSION
        # ASCII escapes keep lone surrogates representable on any stdout encoding.
        sys.stdout.write(json.dumps(record) + "\n")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="relais nlp", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("train", help="rebuild every artifact from the shipped data").set_defaults(
        handler=run_train
    )
    evaluate = commands.add_parser("evaluate", help="quality and speed table")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")
    evaluate.set_defaults(handler=run_evaluate)
    commands.add_parser("enrich", help="JSON lines with `text` on stdin").set_defaults(
        handler=run_enrich
    )
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
