"""A small non-linear sentiment head beside the linear one: an embedding bag over the same
hashed features, one ReLU layer, three outputs.

The linear heads are one product over n-grams, and could not follow the MiniLM teacher far
(teacher 73 on TweetEval val, linear student ~70). This head reads the same coarse features,
learns the teacher's soft labels too, and its log-probabilities are added to the linear
English head's (a product of experts). Trained here in numpy (lazy Adam on the rows a batch
touches), so `relais nlp train` needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

DIM = 32
EPOCHS = 4
BATCH = 256
LEARNING_RATE = 3e-3
BETAS = (0.9, 0.999)
EPSILON = 1e-8


@dataclass(frozen=True)
class MlpHead:
    embedding: np.ndarray  # (2**bits, DIM) float32
    hidden_bias: np.ndarray  # (DIM,)
    out_weights: np.ndarray  # (DIM, classes)
    out_bias: np.ndarray  # (classes,)

    def log_probabilities(self, features: sp.csr_matrix) -> np.ndarray:
        hidden = np.maximum(np.asarray(features @ self.embedding) + self.hidden_bias, 0.0)
        return log_softmax(hidden @ self.out_weights + self.out_bias)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class _Adam:
    """Adam; for the embedding, lazy as torch's SparseAdam: only the rows a batch touches (a
    few thousand of 2**18) have their moments and step counts updated."""

    def __init__(self, parameter: np.ndarray, by_row: bool = False) -> None:
        self.parameter = parameter
        self.first = np.zeros_like(parameter)
        self.second = np.zeros_like(parameter)
        self.steps = np.zeros(parameter.shape[0] if by_row else 1, dtype=np.int64)

    def step(self, gradient: np.ndarray, rows: np.ndarray | None = None) -> None:
        index: np.ndarray | slice = slice(None) if rows is None else rows
        if rows is None:
            self.steps += 1
            count: np.ndarray = self.steps
        else:
            self.steps[rows] += 1
            count = self.steps[rows][:, None]
        first = BETAS[0] * self.first[index] + (1 - BETAS[0]) * gradient
        second = BETAS[1] * self.second[index] + (1 - BETAS[1]) * gradient**2
        self.first[index], self.second[index] = first, second
        corrected = first / (1 - BETAS[0] ** count)
        scale = np.sqrt(second / (1 - BETAS[1] ** count)) + EPSILON
        self.parameter[index] -= (LEARNING_RATE * corrected / scale).astype(np.float32)


def fit_mlp(
    features: sp.csr_matrix,
    targets: np.ndarray,
    weights: np.ndarray,
    seed: int,
) -> MlpHead:
    """Minimise the weighted soft cross-entropy against ``targets`` (rows sum to one), the
    classes balanced by their probability mass."""
    rng = np.random.default_rng(seed)
    buckets, classes = features.shape[1], targets.shape[1]
    mass = (targets * weights[:, None]).sum(axis=0)
    class_weights = mass.sum() / (classes * mass)
    embedding = rng.normal(0.0, 0.05, (buckets, DIM)).astype(np.float32)
    hidden_bias = np.zeros(DIM, dtype=np.float32)
    bound = 1.0 / np.sqrt(DIM)
    out_weights = rng.uniform(-bound, bound, (DIM, classes)).astype(np.float32)
    out_bias = np.zeros(classes, dtype=np.float32)
    optimisers = [_Adam(embedding, by_row=True)]
    optimisers += [_Adam(p) for p in (hidden_bias, out_weights, out_bias)]
    for _ in range(EPOCHS):
        order = rng.permutation(features.shape[0])
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            batch = features[rows]
            pre = np.asarray(batch @ embedding) + hidden_bias
            hidden = np.maximum(pre, 0.0)
            log_p = log_softmax(hidden @ out_weights + out_bias)
            share = weights[rows] / weights[rows].sum()
            weighted = targets[rows] * class_weights * share[:, None]
            d_logits = (np.exp(log_p) * weighted.sum(axis=1, keepdims=True) - weighted).astype(
                np.float32
            )
            d_hidden = (d_logits @ out_weights.T) * (pre > 0)
            touched, d_embedding = _embedding_gradient(batch, d_hidden)
            optimisers[0].step(d_embedding, touched)
            optimisers[1].step(d_hidden.sum(axis=0))
            optimisers[2].step(hidden.T @ d_logits)
            optimisers[3].step(d_logits.sum(axis=0))
    return MlpHead(embedding, hidden_bias, out_weights, out_bias)


def _embedding_gradient(
    batch: sp.csr_matrix, d_hidden: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rows touched, their gradient): batch^T @ d_hidden without the untouched rows."""
    coo = batch.tocoo()
    touched, inverse = np.unique(coo.col, return_inverse=True)
    transposed = sp.csr_matrix((coo.data, (inverse, coo.row)), shape=(len(touched), batch.shape[0]))
    return touched, np.asarray(transposed @ d_hidden, dtype=np.float32)
