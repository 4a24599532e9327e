"""Teaching compact with seed-multiscale: per fold of `train --cv`, seed-multiscale trains on the fold's
training clips, then compact trains on the same clips with targets blended from the labels and the teacher.

    python benchmarks/distill_multiscale.py --data ../shared/data/esc50-subset [--folds 1 2 3 4 5]
        [--teacher-epochs 80] [--alpha 0.5] [--temperature 2] [--config FILE] [--teachers DIR]

The teacher labels the very windows the student sees: each epoch's augmented windows are drawn as the default's,
and the teacher's probabilities on them, softened by `--temperature`, make `1 - alpha` of each target, the
one-hot label the rest. The teacher never sees a test clip. Teachers are saved in `--teachers`, so other
alphas or temperatures reuse them. Prints one JSON line per fold (teacher and student accuracy), then the means.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import load_train_config
from soundsentry.train.datasets import load_dataset
from soundsentry.train.evaluate import clip_scores
from soundsentry.train.features import extract
from soundsentry.train.fit import EpochData, fit_model, predict_windows
from soundsentry.train.run import cv_splits, fold_metrics


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) from softmax(logits): the probabilities to the power 1/T, normalized."""
    p = np.power(np.clip(probabilities, 1e-12, 1.0), 1.0 / temperature)
    return p / p.sum(axis=1, keepdims=True)


class TaughtEpochs(EpochData):
    """The default epochs, each window's target blended from its label and the teacher's view of it."""

    def __init__(self, features, indices, config, teacher: keras.Model, alpha: float, temperature: float) -> None:
        self.teacher, self.alpha, self.temperature = teacher, alpha, temperature
        super().__init__(features, indices, config)

    def _draw(self) -> None:
        super()._draw()
        taught = soften(predict_windows(self.teacher, self.x), self.temperature)
        self.targets = (self.alpha * self.targets + (1 - self.alpha) * taught).astype(np.float32)


def accuracy(model, features, test_idx) -> float:
    scores = clip_scores(lambda w: predict_windows(model, w), features, test_idx)
    return round(fold_metrics(features, test_idx, scores)["accuracy"], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", help="training config (TOML) of the student; default: the shipped defaults")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--teachers", default=str(DEFAULT_CACHE / "teachers"), help="folder of trained teachers")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--teacher-epochs", type=int, default=80, help="seed-multiscale's best schedule here")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the one-hot label in the targets")
    parser.add_argument("--temperature", type=float, default=2.0)
    args = parser.parse_args()
    config = load_train_config(args.config)
    teacher_config = replace(config, preset="seed-multiscale", fit=replace(config.fit, epochs=args.teacher_epochs))
    features = extract(load_dataset(args.data), config, args.cache_dir, progress=False)
    _, splits = cv_splits(features, 5, config.fit.seed)
    Path(args.teachers).mkdir(parents=True, exist_ok=True)
    results = []
    for fold in args.folds:
        train_idx, test_idx = splits[fold - 1]
        started = time.monotonic()
        saved = Path(args.teachers) / f"seed-multiscale-e{args.teacher_epochs}-s{config.fit.seed}-fold{fold}.keras"
        if saved.is_file():
            teacher = keras.models.load_model(saved)
        else:
            teacher, _ = fit_model(features, train_idx, train_idx[:0], teacher_config, verbose=0)
            teacher.save(saved)
        taught = time.monotonic()
        data = TaughtEpochs(features, train_idx, config, teacher, args.alpha, args.temperature)
        student, _ = fit_model(features, train_idx, train_idx[:0], config, verbose=0, data=data)
        results.append({"fold": fold, "teacher": accuracy(teacher, features, test_idx),
                        "student": accuracy(student, features, test_idx),
                        "teacher_s": round(taught - started), "student_s": round(time.monotonic() - taught)})
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"alpha": args.alpha, "temperature": args.temperature, "teacher_epochs": args.teacher_epochs,
                      "folds": results, **{f"{k}_mean": round(float(np.mean([r[k] for r in results])), 3)
                                           for k in ("teacher", "student")}}))


if __name__ == "__main__":
    main()
