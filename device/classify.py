"""Whole-clip classification: a file in, clip scores out, by the same windows and rule as everywhere else."""

from __future__ import annotations

import os

import numpy as np

from .audio import read_audio
from .classifier import Classifier
from .windows import clip_features, combine_scores


def score_audio(classifier: Classifier, audio: np.ndarray, rate: int) -> np.ndarray:
    """Clip scores of mono audio at any rate."""
    b = classifier.bundle
    windows = clip_features(audio, rate, b.frontend, b.window_frames, b.hop_frames)
    scores = np.stack([classifier(w.mel) for w in windows])
    return combine_scores(scores, np.array([w.level for w in windows]))


def score_file(classifier: Classifier, path: str | os.PathLike) -> np.ndarray:
    audio, rate = read_audio(path)
    return score_audio(classifier, audio, rate)


def top_k(labels: tuple[str, ...], scores: np.ndarray, k: int) -> list[dict]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"label": labels[i], "score": round(float(scores[i]), 4)} for i in order]
