"""What another microphone costs: the folds of `train --cv`, each model scored on its clean test clips and on
the same clips played through filters that stand in for other microphones.

    python benchmarks/mic_shift.py --data ../shared/data/esc50-subset [--config FILE] [--folds 1 2 3 4 5]

The device will hear rooms and microphones that no training clip came from. Each filter colours the test
clips' audio before the device's own front end: no bass (4th-order high-pass at 300 Hz), dull (low-pass at
4 kHz), telephone band (band-pass 300 to 3400 Hz), and a +10 dB resonance at 2.5 kHz. Training is
exactly `train --cv`'s for the config. Prints one JSON line per fold, then one object with the means.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
from scipy import signal

from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import TrainConfig, load_train_config
from soundsentry.train.datasets import load_dataset
from soundsentry.train.evaluate import clip_scores, metrics
from soundsentry.train.features import FeatureSet, clean_windows, extract
from soundsentry.train.fit import predict_windows
from soundsentry.train.run import cv_splits, fit_and_score, scored_mask

RESONANCE_DB = 10.0


def microphones(rate: int) -> dict:
    """Each stand-in microphone as a function of a waveform at `rate`."""
    def sos(sections):
        return lambda y: signal.sosfilt(sections, y).astype(np.float32)

    peak_b, peak_a = signal.iirpeak(2500, Q=1.0, fs=rate)  # unity at 2.5 kHz, nothing at DC and Nyquist
    boost = 10 ** (RESONANCE_DB / 20) - 1
    return {
        "no_bass": sos(signal.butter(4, 300, "highpass", fs=rate, output="sos")),
        "dull": sos(signal.butter(4, 4000, "lowpass", fs=rate, output="sos")),
        "telephone": sos(signal.butter(4, [300, 3400], "bandpass", fs=rate, output="sos")),
        "resonance": lambda y: (y + boost * signal.lfilter(peak_b, peak_a, y)).astype(np.float32),
    }


def heard_through(mic, features: FeatureSet, indices) -> FeatureSet:
    """The features with the clips at `indices` windowed again from their audio played through `mic`."""
    clips = list(features.clips)
    for i in indices:
        windows, levels = clean_windows(mic(clips[i].waves[0]), features.params, features.window_frames,
                                        features.hop_frames)
        clips[i] = replace(clips[i], windows=windows, levels=levels)
    return replace(features, clips=clips)


def fold_parser(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark that trains the folds of `train --cv`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", help="training config (TOML); default: the shipped defaults")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    return parser


def config_and_features(args: argparse.Namespace) -> tuple[TrainConfig, FeatureSet]:
    config = load_train_config(args.config)
    return config, extract(load_dataset(args.data), config, args.cache_dir, progress=False)


def main() -> None:
    args = fold_parser(__doc__.splitlines()[0]).parse_args()
    config, features = config_and_features(args)
    mics = microphones(features.params.sample_rate)
    _, splits = cv_splits(features, 5, config.fit.seed)
    results = []
    for fold in args.folds:
        train_idx, test_idx = splits[fold - 1]
        started = time.monotonic()
        model, _, clean = fit_and_score(features, train_idx, test_idx, config, verbose=0)
        real = scored_mask(features, test_idx)
        test_idx, y = test_idx[real], features.y[test_idx[real]]
        accuracy = {"clean": metrics(y, clean[real], features.labels)["accuracy"]}
        for name, mic in mics.items():
            scores = clip_scores(lambda w: predict_windows(model, w), heard_through(mic, features, test_idx),
                                 test_idx)
            accuracy[name] = metrics(y, scores, features.labels)["accuracy"]
        results.append({"fold": fold, **{k: round(v, 3) for k, v in accuracy.items()},
                        "seconds": round(time.monotonic() - started)})
        print(json.dumps(results[-1]), flush=True)
    means = {k: round(float(np.mean([r[k] for r in results])), 3) for k in ["clean", *mics]}
    print(json.dumps({"config": args.config or "defaults", "folds": [r["fold"] for r in results], "mean": means,
                      "mean_drop_from_clean": {k: round(means["clean"] - means[k], 3) for k in mics}}))


if __name__ == "__main__":
    main()
