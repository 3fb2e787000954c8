"""The shipped heads: one weight matrix over the shared hashed features (plus a finer block and
a non-linear expert for the English sentiment head, and per-word scores from word vectors for
the French one), loaded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from relais.nlp.features import FeatureConfig, coarsen, featurise_with_unigrams
from relais.nlp.mlp import MlpHead, log_softmax
from relais.nlp.wordscores import WordScores

ARTIFACT_DIR = Path(__file__).parent / "artifacts"
WEIGHTS_FILE = "heads.npz"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Head:
    name: str
    labels: tuple[str, ...]
    first_column: int

    @property
    def columns(self) -> slice:
        return slice(self.first_column, self.first_column + len(self.labels))


@dataclass(frozen=True)
class FineBlock:
    """Extra weights over finer hashed features (2**bits buckets) for some heads' columns:
    the English sentiment head has more training data than the others and gains from fewer
    collisions, while the other heads keep the coarse (smaller) matrix."""

    bits: int
    first_column: int
    weights: np.ndarray  # (2**bits, columns) float32


@dataclass(frozen=True)
class ExpertBlock:
    """A non-linear head over the coarse features whose log-probabilities are added to one
    linear head's (a product of experts), then shifted by offsets tuned on validation."""

    head: str
    mlp: MlpHead
    offsets: np.ndarray  # (classes,) float32


@dataclass(frozen=True)
class WordScoreBlock:
    """Log-probabilities of per-word scores (relais.nlp.wordvectors), times ``weight``, added
    to one linear head's scores."""

    head: str
    word_scores: WordScores
    weight: float


@dataclass(frozen=True)
class Model:
    """Every head's weights side by side, so one sparse product scores all heads at once (plus
    one small product for the heads of the optional finer block)."""

    version: str
    features: FeatureConfig
    heads: dict[str, Head]
    weights: np.ndarray  # (2**bits, columns) float32
    bias: np.ndarray  # (columns,) float32
    fine: FineBlock | None = None
    expert: ExpertBlock | None = None
    words: WordScoreBlock | None = None

    def scores(self, matrix: sp.csr_matrix, unigrams: sp.csr_matrix | None = None) -> np.ndarray:
        """Scores of a feature matrix hashed at the finest size the model uses (for the expert
        block's head: log-probabilities); ``unigrams`` (the posts' word unigrams at the same
        size) are needed by a model with a word-score block."""
        coarse = coarsen(matrix, self.features.bits)
        scores = np.asarray(coarse @ self.weights) + self.bias
        if self.fine is not None:
            first = self.fine.first_column
            scores[:, first : first + self.fine.weights.shape[1]] += np.asarray(
                matrix @ self.fine.weights
            )
        if self.expert is not None:
            columns = self.heads[self.expert.head].columns
            linear = np.log(_one_vs_rest_probabilities(scores[:, columns]))
            expert = self.expert.mlp.log_probabilities(coarse)
            scores[:, columns] = linear + expert + self.expert.offsets
        if self.words is not None:
            if unigrams is None:
                raise ValueError("this model's word scores need the posts' unigrams")
            columns = self.heads[self.words.head].columns
            word_scores = self.words.word_scores.log_probabilities(unigrams)
            scores[:, columns] += self.words.weight * word_scores
        return scores

    @property
    def finest(self) -> FeatureConfig:
        return FeatureConfig(self.fine.bits) if self.fine is not None else self.features

    def score_texts(self, texts: list[str]) -> np.ndarray:
        return self.scores(*featurise_with_unigrams(texts, self.finest))

    def probabilities(self, scores: np.ndarray, head: str) -> np.ndarray:
        """One-vs-rest logistic outputs normalised to sum to one, as the trainer's; the
        expert block's head holds log-probabilities already."""
        own = scores[:, self.heads[head].columns]
        if self.expert is not None and head == self.expert.head:
            return np.exp(log_softmax(own))
        return _one_vs_rest_probabilities(own)


def _one_vs_rest_probabilities(scores: np.ndarray) -> np.ndarray:
    odds = 1.0 / (1.0 + np.exp(-np.clip(scores, -30, 30)))
    return odds / odds.sum(axis=1, keepdims=True)


def quantise(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int16 weights with one scale per column: half the size of float32, no measurable loss.

    int8 was enough for plain logistic regressions, but the log-count-ratio heads have
    heavy-tailed weights (the largest ~7x the 99th percentile): int8 rounded half of their
    weights to zero and cost 1.2 points of macro recall on a held-out SemEval slice.
    """
    scale = np.abs(weights).max(axis=0) / np.iinfo(np.int16).max
    scale[scale == 0] = 1.0
    return np.round(weights / scale).astype(np.int16), scale.astype(np.float32)


def save(model: Model, meta: dict[str, object], directory: Path = ARTIFACT_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    codes, scale = quantise(model.weights)
    arrays: dict[str, Any] = {"codes": codes, "scale": scale, "bias": model.bias}
    extra: dict[str, int | str | float] = {}
    if model.fine is not None:
        arrays["fine_codes"], arrays["fine_scale"] = quantise(model.fine.weights)
        extra = {"fine_bits": model.fine.bits, "fine_first_column": model.fine.first_column}
    if model.expert is not None:
        mlp = model.expert.mlp
        arrays["expert_codes"], arrays["expert_scale"] = quantise(mlp.embedding)
        arrays["expert_hidden_bias"], arrays["expert_out_weights"] = (
            mlp.hidden_bias,
            mlp.out_weights,
        )
        arrays["expert_out_bias"], arrays["expert_offsets"] = mlp.out_bias, model.expert.offsets
        extra["expert_head"] = model.expert.head
    if model.words is not None:
        word_scores = model.words.word_scores
        arrays["words_buckets"], arrays["words_bias"] = word_scores.buckets, word_scores.bias
        arrays["words_codes"], arrays["words_scale"] = quantise(word_scores.scores)
        extra["words_head"], extra["words_weight"] = model.words.head, model.words.weight
        extra["words_bits"] = word_scores.bits
    np.savez_compressed(directory / WEIGHTS_FILE, **arrays)
    heads = {
        name: {"labels": list(h.labels), "first_column": h.first_column}
        for name, h in model.heads.items()
    }
    document = {
        "version": model.version, "bits": model.features.bits, "heads": heads, **extra, **meta,
    }  # fmt: skip
    (directory / META_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def load(directory: Path = ARTIFACT_DIR) -> Model:
    meta = json.loads((directory / META_FILE).read_text())
    with np.load(directory / WEIGHTS_FILE) as arrays:
        # C order: the sparse product would otherwise copy the whole matrix on every call.
        weights = np.ascontiguousarray(arrays["codes"].astype(np.float32) * arrays["scale"])
        bias = arrays["bias"].astype(np.float32)
        fine = None
        if "fine_bits" in meta:
            fine_weights = arrays["fine_codes"].astype(np.float32) * arrays["fine_scale"]
            fine = FineBlock(
                meta["fine_bits"], meta["fine_first_column"], np.ascontiguousarray(fine_weights)
            )
        expert = None
        if "expert_head" in meta:
            embedding = arrays["expert_codes"].astype(np.float32) * arrays["expert_scale"]
            mlp = MlpHead(
                np.ascontiguousarray(embedding),
                arrays["expert_hidden_bias"],
                arrays["expert_out_weights"],
                arrays["expert_out_bias"],
            )
            expert = ExpertBlock(meta["expert_head"], mlp, arrays["expert_offsets"])
        words = None
        if "words_head" in meta:
            word_scores = WordScores(
                meta["words_bits"],
                arrays["words_buckets"],
                arrays["words_codes"].astype(np.float32) * arrays["words_scale"],
                arrays["words_bias"],
            )
            words = WordScoreBlock(meta["words_head"], word_scores, meta["words_weight"])
    heads = {
        name: Head(name, tuple(spec["labels"]), int(spec["first_column"]))
        for name, spec in meta["heads"].items()
    }
    config = FeatureConfig(meta["bits"])
    return Model(meta["version"], config, heads, weights, bias, fine, expert, words)


@lru_cache(maxsize=1)
def shipped() -> Model:
    """The artifacts inside the package, loaded on first use and kept for the process."""
    return load()
