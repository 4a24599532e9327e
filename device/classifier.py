"""Runs a bundle's model on one log-mel window with LiteRT; quantization comes from the interpreter."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import SoundsentryError
from .bundle import Bundle, BundleError, decode_array, default_bundle_path, read_bundle

SELFTEST_ATOL = 0.02


def interpreter_class():
    """LiteRT's Interpreter, or tflite-runtime's on old Pi images that only have that."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise SoundsentryError("no TFLite interpreter installed: pip install ai-edge-litert") from None
    return Interpreter


def _quant_matches(bundle_q, detail: dict) -> bool:
    scale, zero_point = detail["quantization"]
    if bundle_q.scale == 0.0:
        return scale == 0.0
    return np.isclose(scale, bundle_q.scale, rtol=1e-6) and zero_point == bundle_q.zero_point


class Classifier:
    """`scores = classifier(window)`: window is (window_frames, n_mels) log-mel dB, scores sum to one."""

    def __init__(self, bundle: Bundle, *, num_threads: int = 1) -> None:
        self.bundle = bundle
        where = str(bundle.path or bundle.name)
        try:
            self.interpreter = interpreter_class()(model_content=bundle.model, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except ValueError as exc:
            raise BundleError(f"{where}: model is not a usable TFLite model ({str(exc).splitlines()[0]})") from None
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]
        want = (bundle.window_frames, bundle.frontend.n_mels)
        if tuple(self._in["shape"][1:3]) != want or self._in["shape"][0] != 1:
            raise BundleError(f"{where}: model input shape {list(self._in['shape'])} does not fit window {list(want)}")
        n_out = int(np.prod(self._out["shape"][1:]))
        if n_out != len(bundle.labels):
            raise BundleError(f"{where}: {len(bundle.labels)} labels but the model has {n_out} outputs")
        for name, bq, detail in (("input", bundle.input, self._in), ("output", bundle.output, self._out)):
            if np.dtype(detail["dtype"]).name != bq.dtype or not _quant_matches(bq, detail):
                raise BundleError(f"{where}: manifest {name} quantization {vars(bq)} differs from the model's "
                                  f"{np.dtype(detail['dtype']).name} {detail['quantization']}")
        self._in_scale, self._in_zero = self._in["quantization"]
        self._out_scale, self._out_zero = self._out["quantization"]
        self._in_dtype = np.dtype(self._in["dtype"])

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    def quantize(self, window: np.ndarray) -> np.ndarray:
        x = np.asarray(window, dtype=np.float32).reshape(self._in["shape"])
        if self._in_scale == 0.0:
            return x.astype(self._in_dtype)
        info = np.iinfo(self._in_dtype)
        q = np.round(x / self._in_scale) + self._in_zero
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def __call__(self, window: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in["index"], self.quantize(window))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._out["index"]).reshape(-1)
        if self._out_scale == 0.0:
            return raw.astype(np.float32)
        return ((raw.astype(np.float32) - self._out_zero) * self._out_scale).astype(np.float32)

    def self_test(self) -> float:
        """Run the bundle's self-test vector; return the largest score difference or raise BundleError."""
        where = str(self.bundle.path or self.bundle.name)
        test = self.bundle.selftest
        if not test:
            raise BundleError(f"{where}: bundle has no self-test vector")
        try:
            window = decode_array(test["input"])
            expected = np.asarray(test["output"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{where}: self-test vector is malformed ({exc})") from None
        got = self(window)
        if got.shape != expected.shape:
            raise BundleError(f"{where}: self-test mismatch: {got.shape[0]} scores, expected {expected.shape[0]}")
        diff = float(np.max(np.abs(got - expected)))
        atol = float(test.get("atol", SELFTEST_ATOL))
        if diff > atol:
            raise BundleError(f"{where}: self-test mismatch: scores differ by {diff:.4f} (allowed {atol})")
        return diff


def resolve_bundle_path(path: str | os.PathLike | None) -> Path:
    """The bundle to use: the one named, else the default shipped in the package."""
    if path is not None:
        return Path(path)
    default = default_bundle_path()
    if default is None:
        raise BundleError("no default model is shipped in this build: pass --model BUNDLE")
    return default


def open_model(path: str | os.PathLike | None = None, *, num_threads: int = 1) -> Classifier:
    """Read, validate and self-test a bundle; the one entry point the CLI and daemon use."""
    classifier = Classifier(read_bundle(resolve_bundle_path(path)), num_threads=num_threads)
    classifier.self_test()
    return classifier
