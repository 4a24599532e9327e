"""`soundsentry convert`: a trained Keras model to a checked bundle, or a clear refusal."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from soundsentry.device.bundle import write_bundle
from soundsentry.device.classifier import Classifier
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.frontend import FrontEndParams

from .tflite import QUANT_MODES, make_bundle, to_tflite

log = logging.getLogger("soundsentry.convert")
MIN_AGREEMENT = 0.97
REPRESENTATIVE_WINDOWS = 300
HELD_OUT_WINDOWS = 2000


class ConversionError(SoundsentryError):
    """The converted model disagrees with the Keras one, or the input cannot be converted."""


def windows_with_labels(features, clips: list[int], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Active windows of `clips` and their indices into the model's `labels`."""
    x, y = features.windows_of(clips)
    return x, np.array([labels.index(features.labels[c]) for c in y])


def known_clips(features, labels: list[str], where) -> list[int]:
    known = [i for i, c in enumerate(features.clips) if features.labels[c.label] in labels]
    if not known:
        raise ConversionError(f"{where}: no clips of the model's labels")
    return known


def representative(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """About REPRESENTATIVE_WINDOWS windows, balanced over the classes present."""
    per_class = max(1, REPRESENTATIVE_WINDOWS // len(np.unique(y)))
    return x[np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])]


def split_by_recording(features, known: list[int], rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Half the recordings calibrate, the other half check, so the check runs on unseen windows."""
    groups = sorted({features.clips[i].group for i in known})
    rng.shuffle(groups)
    calib_groups = set(groups[: max(1, len(groups) // 2)])
    calib = [i for i in known if features.clips[i].group in calib_groups]
    return calib, [i for i in known if features.clips[i].group not in calib_groups] or calib


def calibration_and_check(features, labels: list[str], where, check: tuple | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representative windows, and the held-out windows and label indices the conversion is checked on.

    With `check` (features, root) the check runs on that data set; otherwise on the recordings of `features`
    not used to calibrate. Seeded, so benchmarks see the windows convert saw."""
    rng = np.random.default_rng(0)
    known = known_clips(features, labels, where)
    if check is None:
        calib, held = split_by_recording(features, known, rng)
        check_features = features
    else:
        check_features, check_root = check
        calib, held = known, known_clips(check_features, labels, check_root)
    rep_x = representative(*windows_with_labels(features, calib, labels), rng)
    held_x, held_y = windows_with_labels(check_features, held, labels)
    order = rng.permutation(len(held_x))[:HELD_OUT_WINDOWS]
    return rep_x, held_x[order], held_y[order]


def agreement(keras_scores: np.ndarray, tflite_scores: np.ndarray, truth: np.ndarray) -> dict:
    k, t = keras_scores.argmax(1), tflite_scores.argmax(1)
    return {"agreement": float(np.mean(k == t)), "keras_accuracy": float(np.mean(k == truth)),
            "tflite_accuracy": float(np.mean(t == truth)), "windows": int(len(truth))}


def convert_model(model: str | os.PathLike, calibration: str | os.PathLike, out: str | os.PathLike, *,
                  quant: str = "int8", force: bool = False, name: str | None = None, version: str | None = None,
                  check_data: str | os.PathLike | None = None, format: str | None = None, cache_dir: str | os.PathLike | None = None,
                  min_agreement: float = MIN_AGREEMENT) -> dict:
    """Convert, check against Keras on held-out windows, and write the bundle (atomically) to `out`."""
    from soundsentry.train.config import feature_config
    from soundsentry.train.datasets import load_dataset
    from soundsentry.train.evaluate import load_trained
    from soundsentry.train.features import BACKGROUND
    from soundsentry.train.features import extract

    if quant not in QUANT_MODES:
        raise ConversionError(f"--quant {quant!r} is not one of {', '.join(QUANT_MODES)}")
    model_path = Path(model)
    keras_model, info = load_trained(model_path)
    labels = list(info["labels"])
    frontend = FrontEndParams.from_dict(info["frontend"])
    frames, hop = info["window"]["frames"], info["window"]["hop_frames"]
    want = (None, frames, frontend.n_mels, 1)
    if tuple(keras_model.input_shape) != want:
        raise ConversionError(f"{model_path}: input shape {tuple(keras_model.input_shape)} does not fit the front end "
                              f"and window {want}")
    if tuple(keras_model.output_shape) != (None, len(labels)):
        raise ConversionError(f"{model_path}: output shape {tuple(keras_model.output_shape)} differs from "
                              f"{len(labels)} labels")
    config = feature_config(frontend, info["window"], background_class=True)
    dataset = load_dataset(calibration, format)
    features = extract(dataset, config, cache_dir)
    check = None
    if check_data is not None:
        check_dataset = load_dataset(check_data, format)
        check = (extract(check_dataset, config, cache_dir), check_dataset.root)
    rep_x, held_x, held_y = calibration_and_check(features, labels, dataset.root, check)
    tflite = to_tflite(keras_model, rep_x, quant)
    keras_scores = keras_model.predict(held_x[..., None], batch_size=256, verbose=0)
    summary = info.get("summary", {})
    provenance = {
        "dataset": info.get("dataset", {}),
        "license": info.get("dataset", {}).get("license", "unknown"),
        "training": {"preset": info.get("preset"), "protocol": info.get("protocol"), "params": summary.get("params"),
                     "cv": summary.get("cv"), "validation": summary.get("validation")},
        "source_model": str(model_path),  # as given: bench looks for it relative to where it runs
        "conversion": {"quant": quant, "calibration": str(dataset.root), "representative_windows": int(len(rep_x)),
                       "checked_on": str(check_data or dataset.root)},
    }
    bundle = make_bundle(tflite, name=name or info.get("name") or model_path.parent.name,
                         version=version or "1", labels=labels, frontend=frontend, window_frames=frames,
                         hop_frames=hop, provenance=provenance, selftest_window=held_x[0],
                         background_labels=tuple(label for label in labels if label == BACKGROUND))
    classifier = Classifier(bundle)
    check = agreement(keras_scores, np.stack([classifier(w) for w in held_x]), held_y)
    check["accuracy_drop"] = check["keras_accuracy"] - check["tflite_accuracy"]
    bundle = replace(bundle, provenance={**provenance, "conversion": {**provenance["conversion"], **check}})
    log.info("top-1 agreement %.4f on %d held-out windows (Keras accuracy %.3f, TFLite %.3f)",
             check["agreement"], check["windows"], check["keras_accuracy"], check["tflite_accuracy"])
    if check["agreement"] < min_agreement and not force:
        raise ConversionError(f"{model_path}: {quant} model agrees with Keras on only {check['agreement']:.1%} of "
                              f"{check['windows']} held-out windows (need {min_agreement:.0%}); nothing written "
                              "(--force writes it anyway)")
    path = write_bundle(bundle, out)
    return {"bundle": str(path), "size_bytes": bundle.size_bytes, "sha256": bundle.sha256,
            **bundle.provenance["conversion"]}
