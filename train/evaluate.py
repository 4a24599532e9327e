"""Clip-level evaluation of Keras models and bundles, by the device's active-window rule."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from soundsentry.device.classifier import Classifier, open_model
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.frontend import FrontEndParams
from soundsentry.device.windows import combine_scores

from .config import feature_config
from .datasets import load_dataset
from .features import FeatureSet, extract

RUN_INFO = "run.json"


def clip_scores(predict, features: FeatureSet, indices) -> np.ndarray:
    """Scores per clip: `predict(windows) -> window scores`, combined over each clip's active windows."""
    indices = list(indices)
    windows = np.concatenate([features.clips[i].windows for i in indices])
    scores = predict(windows)
    out, start = [], 0
    for i in indices:
        clip = features.clips[i]
        out.append(combine_scores(scores[start : start + len(clip.windows)], clip.levels))
        start += len(clip.windows)
    return np.stack(out)


def classifier_predict(classifier: Classifier):
    return lambda windows: np.stack([classifier(w) for w in windows])


def metrics(y_true: np.ndarray, scores: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 over the classes present, per-class precision/recall/F1, confusion matrix."""
    y_pred = scores.argmax(axis=1)
    present = sorted(set(y_true.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {labels[c]: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for c, p, r, f, s in zip(present, precision, recall, f1, support)},
        "labels": labels,
        "confusion": confusion_matrix(y_true, y_pred, labels=range(len(labels))).tolist(),
    }


def load_trained(model_path: Path):
    """A trained Keras model and its run.json (labels, front end, window); one-line errors otherwise."""
    import keras

    if not model_path.is_file():
        raise SoundsentryError(f"{model_path}: no such file")
    if not zipfile.is_zipfile(model_path):
        raise SoundsentryError(f"{model_path}: not a Keras model (.keras zip archive)")
    try:
        model = keras.models.load_model(model_path)
    except Exception as exc:  # keras raises many kinds for a file that is not a model
        raise SoundsentryError(f"{model_path}: not a Keras model ({str(exc).splitlines()[0][:160]})") from None
    info_path = model_path.parent / RUN_INFO
    if not info_path.is_file():
        raise SoundsentryError(f"{model_path}: no {RUN_INFO} beside it: labels and front end unknown")
    return model, json.loads(info_path.read_text())


def evaluate(data: str | os.PathLike, model: str | os.PathLike | None = None, *, format: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> dict:
    """Evaluate a bundle (default: the shipped one) or a `.keras` model on a whole data set."""
    dataset = load_dataset(data, format)
    if model is not None and str(model).endswith(".keras"):
        keras_model, info = load_trained(Path(model))
        labels, frontend, window = info["labels"], FrontEndParams.from_dict(info["frontend"]), info["window"]
        predict = lambda w: keras_model.predict(w[..., None], batch_size=256, verbose=0)  # noqa: E731
        name = str(model)
    else:
        classifier = open_model(model)
        b = classifier.bundle
        labels, frontend = list(b.labels), b.frontend
        window = {"frames": b.window_frames, "hop_frames": b.hop_frames}
        predict, name = classifier_predict(classifier), str(b.path)
    features = extract(dataset, feature_config(frontend, window, background_class=False), cache_dir)
    known = [i for i, c in enumerate(features.clips) if features.labels[c.label] in labels]
    missing = sorted(set(features.labels) - set(labels))
    result = {"model": name, "data": str(dataset.root), "format": dataset.format,
              "skipped": features.skipped, "classes_not_in_model": missing,
              "clips_not_in_model": len(features.clips) - len(known)}
    if not known:
        raise SoundsentryError(f"{dataset.root}: none of its classes is known to the model")
    y = np.array([labels.index(features.labels[features.clips[i].label]) for i in known])
    result.update(metrics(y, clip_scores(predict, features, known), labels))
    return result
