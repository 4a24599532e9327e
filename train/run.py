"""`soundsentry train`: features, optional cross-validation, the final fit, and the run directory."""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from pathlib import Path

import numpy as np
import tomli_w
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from soundsentry.device.settings import to_plain

from . import report
from .config import TrainConfig
from .datasets import load_dataset
from .evaluate import RUN_INFO, clip_scores, metrics
from .features import BACKGROUND, FeatureSet, extract
from .machine import machine_info

log = logging.getLogger("soundsentry.train.run")
KERAS_MODEL = "model.keras"
BASELINE_MODEL = "model.pkl"


def cv_splits(features: FeatureSet, k: int, seed: int) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The data set's own folds when it has several, else stratified k-fold grouped by recording."""
    folds = features.folds
    own = sorted(set(folds.tolist()))
    if len(own) > 1:
        return (f"leave-one-fold-out over the data set's {len(own)} folds",
                [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in own])
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(len(folds)), features.y, features.groups))
    return f"{k}-fold cross-validation grouped by recording (stratified, seed {seed})", splits


def val_split(features: FeatureSet, indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole recordings of `indices` for early stopping; none when `fraction` is 0."""
    if fraction == 0:
        return indices, indices[:0]
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    fit, val = next(splitter.split(indices, groups=features.groups[indices]))
    return indices[fit], indices[val]


def fit_and_score(features: FeatureSet, train_idx: np.ndarray, test_idx: np.ndarray, config: TrainConfig,
                  verbose: int | None) -> tuple[object, dict, np.ndarray]:
    """Train on `train_idx`; return the model, its history and clip scores on `test_idx`."""
    if config.preset == "baseline-mfcc-logreg":
        from .baseline import baseline_scores, fit_baseline

        model = fit_baseline(features, train_idx, config.fit.seed)
        return model, {}, baseline_scores(model, features, test_idx)
    from .fit import fit_model, predict_windows

    fit_idx, val_idx = val_split(features, train_idx, config.fit.val_fraction, config.fit.seed)
    model, history = fit_model(features, fit_idx, val_idx, config, verbose=verbose)
    return model, history, clip_scores(lambda w: predict_windows(model, w), features, test_idx)


def cross_validate(features: FeatureSet, config: TrainConfig, k: int, verbose: int | None) -> dict:
    protocol, splits = cv_splits(features, k, config.fit.seed)
    y = features.y
    real_idx = real_clips(features)
    pooled = np.zeros((len(y), len(features.labels)), np.float32)
    folds = []
    for n, (train_idx, test_idx) in enumerate(splits, 1):
        start = time.monotonic()
        model, _, scores = fit_and_score(features, train_idx, test_idx, config, verbose)
        pooled[test_idx] = scores
        m = fold_metrics(features, test_idx, scores)
        folds.append({"fold": n, "n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                      "seconds": round(time.monotonic() - start, 1)})
        log.info("fold %d/%d: accuracy %.3f, macro-F1 %.3f", n, len(splits), m["accuracy"], m["macro_f1"])
    acc = np.array([f["accuracy"] for f in folds])
    f1 = np.array([f["macro_f1"] for f in folds])
    return {"protocol": protocol, "folds": folds, "params": count_params(model),
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
            "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std()),
            "pooled": metrics(y[real_idx], pooled[real_idx], features.labels)}


def real_clips(features: FeatureSet) -> np.ndarray:
    """Indices of the data set's own clips (not the synthetic background ones)."""
    return np.array([i for i, c in enumerate(features.clips) if not c.group.startswith(f"{BACKGROUND}-")])


def scored_mask(features: FeatureSet, indices: np.ndarray) -> np.ndarray:
    """Which of `indices` are scored: the data set's own clips. The synthetic background clips train, but are not
    scored."""
    return np.isin(indices, real_clips(features))


def fold_metrics(features: FeatureSet, test_idx: np.ndarray, scores: np.ndarray) -> dict:
    """`metrics` of a fold's test clips from their scores, the scored ones only (`scored_mask`)."""
    real = scored_mask(features, test_idx)
    return metrics(features.y[test_idx][real], scores[real], features.labels)


def count_params(model) -> int:
    if hasattr(model, "count_params"):
        return int(model.count_params())
    return int(sum(np.size(c) for c in (model[-1].coef_, model[-1].intercept_)))


def train(data: str | os.PathLike, out: str | os.PathLike, *, config: TrainConfig, cv: bool = False, k: int = 5,
          format: str | None = None, cache_dir: str | os.PathLike | None = None, final: bool = True,
          verbose: int | None = None) -> dict:
    """Train (and with `cv`, cross-validate) `config.preset` on a data set; write the run directory."""
    started = time.monotonic()
    out = Path(out)
    dataset = load_dataset(data, format)
    features = extract(dataset, config, cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.toml").write_text(tomli_w.dumps(to_plain(config)))
    data_info = {"root": str(dataset.root), "format": dataset.format, "clips": len(features.clips),
                 "classes": len(features.labels), "license": dataset.license, "skipped": len(features.skipped)}
    summary: dict = {"preset": config.preset, "data": data_info, "labels": features.labels,
                     "skipped_clips": features.skipped}
    card_metrics: dict = {}
    protocol = ("no cross-validation was run; figures are on the validation recordings held out for early stopping"
                if config.fit.val_fraction else "no cross-validation was run and no recordings were held out; figures "
                "are on the training recordings and overstate accuracy on new sounds")
    if cv:
        result = cross_validate(features, config, k, verbose)
        summary["cv"] = {key: value for key, value in result.items() if key != "pooled"}
        (out / "cv.json").write_text(json.dumps(result, indent=2))
        pooled = result["pooled"]
        report.plot_confusion(pooled["confusion"], features.labels, out / "confusion.png",
                              f"{config.preset}: out-of-fold predictions")
        (out / "per_class.md").write_text(report.per_class_table(pooled))
        protocol = result["protocol"]
        card_metrics = {
            "accuracy": f"{result['accuracy_mean']:.3f} ± {result['accuracy_std']:.3f} (mean ± std over folds)",
            "macro-F1": f"{result['macro_f1_mean']:.3f} ± {result['macro_f1_std']:.3f}",
            "folds": ", ".join(f"{f['accuracy']:.3f}" for f in result["folds"]),
        }
    if final:
        all_idx = np.arange(len(features.clips))
        if config.preset == "baseline-mfcc-logreg":
            from .baseline import fit_baseline

            model = fit_baseline(features, all_idx, config.fit.seed)
            with open(out / BASELINE_MODEL, "wb") as handle:
                pickle.dump(model, handle)
        else:
            from .fit import fit_model, predict_windows

            fit_idx, val_idx = val_split(features, all_idx, config.fit.val_fraction, config.fit.seed)
            model, history = fit_model(features, fit_idx, val_idx, config, verbose=verbose)
            model.save(out / KERAS_MODEL)
            report.write_history(history, out / "history.csv")
            report.plot_history(history, out / "curves.png")
            summary["epochs"] = len(history.get("loss", []))
            val_idx = np.intersect1d(val_idx, real_clips(features))
            if len(val_idx) or not cv:
                # with nothing held out, the reports show the training clips, and say so
                scored = val_idx if len(val_idx) else real_clips(features)
                m = metrics(features.y[scored], clip_scores(lambda w: predict_windows(model, w), features, scored),
                            features.labels)
                if len(val_idx):
                    summary["validation"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}
                if not cv:
                    where = "validation recordings" if len(val_idx) else "training recordings, seen in training"
                    report.plot_confusion(m["confusion"], features.labels, out / "confusion.png",
                                          f"{config.preset}: {where}")
                    (out / "per_class.md").write_text(report.per_class_table(m))
                    card_metrics = {"accuracy": f"{m['accuracy']:.3f}", "macro-F1": f"{m['macro_f1']:.3f}",
                                    "clips": m["n"]}
        summary["params"] = count_params(model)
    summary["seconds"] = round(time.monotonic() - started, 1)
    run_info = {"name": out.name, "preset": config.preset, "labels": features.labels,
                "frontend": config.frontend.to_dict(),
                "window": {"frames": config.window.frames, "hop_frames": config.window.hop_frames},
                "dataset": data_info, "protocol": protocol, "summary": summary, "machine": machine_info()}
    (out / RUN_INFO).write_text(json.dumps(run_info, indent=2))
    (out / "model_card.md").write_text(report.model_card(
        name=out.name, preset=config.preset, params=summary.get("params", 0), dataset=data_info, protocol=protocol,
        metrics=card_metrics, frontend=config.frontend.to_dict(), window=run_info["window"]))
    return summary
