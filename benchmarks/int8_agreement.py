"""Where an int8 bundle disagrees with its Keras model, on the held-out windows `soundsentry convert` checks.

    python benchmarks/int8_agreement.py --data ../shared/data/esc50-subset \
        [--keras benchmarks/default-model/model.keras] [--model BUNDLE] [--layers]

Splits the disagreement in two: Keras fed windows rounded to the bundle's int8 input grid (the input's
share), and the int8 model against that (the rest of the network's share). Also counts the windows whose
int8 top score is an exact tie, and Keras' own top-two margin where the two disagree. With --layers, also
each layer's int8 error in its own steps (TensorFlow's quantization debugger, re-converting with convert's
settings; rounding alone gives 0.29). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from soundsentry.convert.convert import calibration_and_check
from soundsentry.convert.tflite import make_converter
from soundsentry.device.classifier import open_model
from soundsentry.device.frontend import FrontEndParams
from soundsentry.train.cli import DEFAULT_CACHE
from soundsentry.train.config import feature_config
from soundsentry.train.datasets import load_dataset
from soundsentry.train.evaluate import load_trained
from soundsentry.train.features import extract


def margin(scores: np.ndarray) -> np.ndarray:
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


def layer_errors(keras_model, representative: np.ndarray, windows: np.ndarray) -> dict[str, float]:
    """RMS int8 error of each layer's output, in units of that tensor's int8 step."""
    import tensorflow as tf

    with contextlib.redirect_stdout(sys.stderr):  # the exporter prints its signature; stdout carries the JSON
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=make_converter(keras_model, representative, "int8"),
            debug_dataset=lambda: ([w[None, ..., None].astype(np.float32)] for w in windows))
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    rows = csv.DictReader(dump)
    return {f"{r['op_name']} {r['tensor_name'].split(';')[0]}": round(float(r["mean_squared_error"]) ** 0.5 / float(r["scale"]), 3)
            for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the calibration data set given to convert")
    parser.add_argument("--keras", type=Path, default=Path("benchmarks/default-model/model.keras"))
    parser.add_argument("--model", help="the int8 bundle converted from --keras (default: the shipped one)")
    parser.add_argument("--layers", action="store_true", help="each layer's error on 300 of the windows (slow)")
    args = parser.parse_args()
    keras_model, info = load_trained(args.keras)
    labels = list(info["labels"])
    config = feature_config(FrontEndParams.from_dict(info["frontend"]), info["window"], background_class=True)
    dataset = load_dataset(args.data)
    representative, x, _ = calibration_and_check(extract(dataset, config, DEFAULT_CACHE), labels, dataset.root)
    classifier = open_model(args.model)
    scale, zero = classifier.interpreter.get_input_details()[0]["quantization"]
    on_grid = np.stack([(classifier.quantize(w).astype(np.float32) - zero) * scale for w in x]).reshape(x.shape)
    keras = keras_model.predict(x[..., None], batch_size=256, verbose=0)
    keras_grid = keras_model.predict(on_grid[..., None], batch_size=256, verbose=0)
    int8 = np.stack([classifier(w) for w in x])
    k, kg, t = keras.argmax(1), keras_grid.argmax(1), int8.argmax(1)
    differ = k != t
    report = {
        "keras": str(args.keras), "bundle": f"{classifier.bundle.name} {classifier.bundle.version}",
        "windows": len(x), "input_scale_db": round(float(scale), 4),
        "agreement": round(float(np.mean(~differ)), 4),
        "agreement_input_grid_only": round(float(np.mean(k == kg)), 4),
        "agreement_rest_of_network": round(float(np.mean(kg == t)), 4),
        "disagreeing": int(differ.sum()),
        "disagreeing_int8_ties": int(np.sum(differ & (margin(int8) == 0))),
        "keras_margin_where_disagreeing_median": round(float(np.median(margin(keras)[differ])), 4),
        "keras_margin_all_median": round(float(np.median(margin(keras))), 4),
    }
    if args.layers:
        report["layer_error_in_int8_steps"] = layer_errors(keras_model, representative, x[:300])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
