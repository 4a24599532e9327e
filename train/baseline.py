"""The `baseline-mfcc-logreg` preset: clip statistics of 40 MFCCs, standardized, logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from soundsentry.device.frontend import log_mel

from .features import FeatureSet

N_MFCC = 40


def mfcc_stats(log_mel: np.ndarray) -> np.ndarray:
    """Mean, std, min, max of 40 MFCCs (DCT of the front end's log-mel) and the std of their deltas."""
    import librosa

    mfcc = librosa.feature.mfcc(S=log_mel.T, n_mfcc=N_MFCC)
    delta = librosa.feature.delta(mfcc, mode="nearest")
    return np.concatenate([mfcc.mean(1), mfcc.std(1), mfcc.min(1), mfcc.max(1), delta.std(1)])


def clip_matrix(features: FeatureSet, indices) -> np.ndarray:
    return np.stack([mfcc_stats(log_mel(features.clips[i].waves[0], features.params).mel) for i in indices])


def fit_baseline(features: FeatureSet, indices, seed: int = 0) -> Pipeline:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    return model.fit(clip_matrix(features, indices), features.y[list(indices)])


def baseline_scores(model: Pipeline, features: FeatureSet, indices) -> np.ndarray:
    """Clip scores over all labels (columns for classes absent from training stay zero)."""
    proba = model.predict_proba(clip_matrix(features, indices))
    scores = np.zeros((len(proba), len(features.labels)), np.float32)
    scores[:, model.classes_] = proba
    return scores
