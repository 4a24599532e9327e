"""Keras to TFLite in four modes, and the bundle around the result (quantization read from the model)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace

import numpy as np

from soundsentry.device.bundle import Bundle, Quantization, encode_array, now_iso
from soundsentry.device.classifier import Classifier, interpreter_class
from soundsentry.device.frontend import FrontEndParams

QUANT_MODES = ("int8", "float16", "float32", "dynamic")


def make_converter(model, representative: np.ndarray, mode: str = "int8"):
    """The TFLite converter for `mode`; `int8` is full integer with int8 input and output, calibrated on
    `representative` windows."""
    import tensorflow as tf

    if mode not in QUANT_MODES:
        raise ValueError(f"quantization {mode!r} is not one of {QUANT_MODES}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "dynamic", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        def samples():
            for window in representative:
                yield [window[None, ..., None].astype(np.float32)]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def to_tflite(model, representative: np.ndarray, mode: str = "int8") -> bytes:
    """Convert (see make_converter)."""
    converter = make_converter(model, representative, mode)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its signature to stdout
        return converter.convert()


def tensor_quantization(detail: dict) -> Quantization:
    scale, zero_point = detail["quantization"]
    return Quantization(dtype=np.dtype(detail["dtype"]).name, scale=float(scale), zero_point=int(zero_point))


def make_bundle(tflite: bytes, *, name: str, version: str, labels: list[str], frontend: FrontEndParams,
                window_frames: int, hop_frames: int, provenance: dict, selftest_window: np.ndarray,
                background_labels: tuple[str, ...] = ()) -> Bundle:
    """A complete bundle: quantization from the interpreter, the self-test output from running it."""
    interpreter = interpreter_class()(model_content=tflite)
    bundle = Bundle(
        name=name, version=version, labels=tuple(labels), background_labels=tuple(background_labels),
        frontend=frontend,
        window_frames=window_frames, hop_frames=hop_frames,
        input=tensor_quantization(interpreter.get_input_details()[0]),
        output=tensor_quantization(interpreter.get_output_details()[0]),
        model=tflite, created=now_iso(), provenance=provenance,
    )
    expected = Classifier(bundle)(selftest_window)
    selftest = {"input": encode_array(selftest_window.astype(np.float32)),
                "output": [round(float(v), 6) for v in expected], "atol": 0.02}
    return replace(bundle, selftest=selftest)
