"""The event scene on sounds no model has heard: each fold of `train --cv` trains, converts to int8, and runs
the device path over a scene made of its own held-out clips, clean and through the stand-in microphones.

    python benchmarks/event_cv.py --data ../shared/data/esc50-subset [--config FILE] [--folds 1 2 3 4 5]

event_rule_bench.py scores a scene of every clip with a model trained on all of them, so it measures how well a
model knows its training sounds. Here each fold's model (trained exactly as `train --cv` trains it) is converted
as `soundsentry convert` converts, calibrated on the fold's training windows only, and judged with each of
event_rule_bench.py's rules on a scene of the fold's test clips (placed as event_rule_bench.py places them,
seeded by the fold). With --out, each fold's bundle is kept there; --bundles judges kept bundles again without
training (for another rule). Prints one JSON line per fold, then the totals over the folds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from soundsentry.device.bundle import Bundle, read_bundle, write_bundle
from soundsentry.device.classifier import Classifier
from soundsentry.train.demo import SOUND_S, loudest_stretch
from soundsentry.train.evaluate import classifier_predict, clip_scores
from soundsentry.train.features import BACKGROUND
from soundsentry.train.fit import predict_windows
from soundsentry.train.run import cv_splits, fit_and_score, fold_metrics, scored_mask
from soundsentry.convert.convert import agreement, representative, windows_with_labels
from soundsentry.convert.tflite import make_bundle, to_tflite

from event_rule_bench import RULES, judge, place_sounds, score
from mic_shift import config_and_features, fold_parser, microphones

COUNTS = ("sounds", "sounds_found", "hits", "confusions", "false_starts_in_quiet")


def fold_bundle(model, features, train_idx: np.ndarray, fold: int) -> Bundle:
    """The fold's model in full int8, calibrated on its own training clips' windows."""
    rng = np.random.default_rng(0)
    rep_x = representative(*windows_with_labels(features, list(train_idx), features.labels), rng)
    return make_bundle(to_tflite(model, rep_x), name=f"fold-{fold}", version="1", labels=features.labels,
                       frontend=features.params, window_frames=features.window_frames,
                       hop_frames=features.hop_frames, provenance={}, selftest_window=rep_x[0],
                       background_labels=(BACKGROUND,) if BACKGROUND in features.labels else ())


def judge_fold(bundle: Bundle, features, test_idx: np.ndarray, fold: int, mics: dict) -> dict:
    """The bundle's int8 clip accuracy on the fold's test clips, and every rule on their scene through each mic."""
    real = test_idx[scored_mask(features, test_idx)]
    int8_scores = clip_scores(classifier_predict(Classifier(bundle)), features, test_idx)
    rng = np.random.default_rng(fold)
    sounds = [(features.labels[features.clips[i].label], loudest_stretch(features.clips[i].waves[0], SOUND_S))
              for i in rng.permutation(real)]
    scene, truth = place_sounds(sounds, rng)
    result = {"int8_accuracy": round(fold_metrics(features, test_idx, int8_scores)["accuracy"], 3)}
    for name, mic in mics.items():
        scored = score(bundle, mic(scene))
        result[name] = {rule_name: {key: value for key, value in judge(bundle, scored, truth, rule).items()
                                    if key in (*COUNTS, "latency_median_s")}
                        for rule_name, rule in RULES.items()}
    return result


def train_fold(features, config, train_idx: np.ndarray, test_idx: np.ndarray, fold: int) -> tuple[Bundle, dict]:
    """Train as `train --cv` does and convert; the Keras clip accuracy and the int8 agreement on test windows."""
    model, _, scores = fit_and_score(features, train_idx, test_idx, config, verbose=0)
    bundle = fold_bundle(model, features, train_idx, fold)
    x, y = windows_with_labels(features, list(test_idx[scored_mask(features, test_idx)]), features.labels)
    check = agreement(predict_windows(model, x), classifier_predict(Classifier(bundle))(x), y)
    return bundle, {"accuracy": round(fold_metrics(features, test_idx, scores)["accuracy"], 3),
                    "int8_agreement": round(check["agreement"], 4)}


def main() -> None:
    parser = fold_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to keep each fold's bundle in (fold-N.ssb)")
    parser.add_argument("--bundles", type=Path, help="judge the bundles an earlier --out kept, without training")
    args = parser.parse_args()
    config, features = config_and_features(args)
    mics = {"clean": lambda y: y, **microphones(features.params.sample_rate)}
    _, splits = cv_splits(features, 5, config.fit.seed)
    results = []
    for fold in args.folds:
        train_idx, test_idx = splits[fold - 1]
        started = time.monotonic()
        if args.bundles:
            bundle, trained = read_bundle(args.bundles / f"fold-{fold}.ssb"), {}
        else:
            bundle, trained = train_fold(features, config, train_idx, test_idx, fold)
        if args.out:
            write_bundle(bundle, args.out / f"fold-{fold}.ssb")
        result = {"fold": fold, **trained, **judge_fold(bundle, features, test_idx, fold, mics),
                  "seconds": round(time.monotonic() - started)}
        results.append(result)
        print(json.dumps(result), flush=True)
    totals = {name: {rule: {key: sum(r[name][rule][key] for r in results) for key in COUNTS} for rule in RULES}
              for name in mics}
    means = {key: round(float(np.mean([r[key] for r in results])), 3)
             for key in ("accuracy", "int8_accuracy") if key in results[0]}
    print(json.dumps({"config": args.config or "defaults", "folds": [r["fold"] for r in results], **means,
                      "totals": totals}))


if __name__ == "__main__":
    main()
