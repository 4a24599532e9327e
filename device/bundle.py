"""The model bundle: one zip file with the TFLite model and everything needed to use it.

`manifest.json` holds labels, front-end parameters, window and hop, tensor quantization, provenance,
the model's sha256, a self-test vector and room for a signature; `model.tflite` is the model itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import SoundsentryError
from .frontend import FrontEndParams

FORMAT = "soundsentry-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.tflite"
SUFFIX = ".ssb"
DEFAULT_BUNDLE = "default.ssb"
DTYPES = ("int8", "uint8", "float32", "float16")


class BundleError(SoundsentryError, ValueError):
    """A bundle that cannot be used; the message is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Quantization:
    """How a tensor maps to real values: real = scale * (q - zero_point); scale 0 means float."""

    dtype: str
    scale: float = 0.0
    zero_point: int = 0


@dataclass(frozen=True)
class Bundle:
    """A model with its labels, front end, window, quantization and provenance."""

    name: str
    version: str
    labels: tuple[str, ...]
    frontend: FrontEndParams
    window_frames: int
    hop_frames: int
    input: Quantization
    output: Quantization
    model: bytes = field(repr=False)
    created: str = ""
    provenance: dict = field(default_factory=dict)
    selftest: dict | None = None
    signature: str | None = None
    path: Path | None = None
    background_labels: tuple[str, ...] = ()
    """Labels that mean 'nothing in particular' (a quiet room): scored, but never events."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model).hexdigest()

    @property
    def size_bytes(self) -> int:
        return len(self.model)

    @property
    def hop_s(self) -> float:
        return self.hop_frames * self.frontend.hop_length / self.frontend.sample_rate

    @property
    def window_s(self) -> float:
        """Audio one window spans, in seconds."""
        return self.frontend.span(self.window_frames) / self.frontend.sample_rate

    def manifest(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "labels": list(self.labels),
            "background_labels": list(self.background_labels),
            "frontend": self.frontend.to_dict(),
            "window": {
                "frames": self.window_frames,
                "hop_frames": self.hop_frames,
                "window_s": round(self.window_s, 6),
                "hop_s": round(self.hop_s, 6),
            },
            "input": vars(self.input),
            "output": vars(self.output),
            "model": {"file": MODEL, "sha256": self.sha256, "size_bytes": self.size_bytes},
            "provenance": self.provenance,
            "selftest": self.selftest,
            "signature": self.signature,
        }

    def summary(self) -> dict:
        """The flat view `soundsentry inspect --json` prints."""
        return {
            "path": str(self.path) if self.path else None,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "labels": list(self.labels),
            "background_labels": list(self.background_labels),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "input_dtype": self.input.dtype,
            "output_dtype": self.output.dtype,
            "input_quantization": vars(self.input),
            "output_quantization": vars(self.output),
            "sample_rate": self.frontend.sample_rate,
            "window_s": round(self.window_s, 6),
            "hop_s": round(self.hop_s, 6),
            "window_frames": self.window_frames,
            "hop_frames": self.hop_frames,
            "frontend": self.frontend.to_dict(),
            "provenance": self.provenance,
            "signed": self.signature is not None,
        }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def encode_array(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode()}


def decode_array(data: dict) -> np.ndarray:
    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()


def _need(manifest: dict, key: str, kind: type, where: str):
    if key not in manifest:
        raise BundleError(f"{where}: manifest has no {key!r}")
    value = manifest[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: manifest {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _quantization(data: dict, key: str, where: str) -> Quantization:
    try:
        quant = Quantization(dtype=str(data["dtype"]), scale=float(data.get("scale", 0.0)), zero_point=int(data.get("zero_point", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: manifest {key!r} is not a quantization ({exc})") from None
    if quant.dtype not in DTYPES:
        raise BundleError(f"{where}: manifest {key!r} dtype {quant.dtype!r} is not one of {DTYPES}")
    return quant


def parse_bundle(manifest: dict, model: bytes, where: str) -> Bundle:
    """Validate a manifest and model bytes; raise BundleError naming the first thing wrong."""
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: not a soundsentry bundle (manifest format is {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION}")
    labels = _need(manifest, "labels", list, where)
    if not labels:
        raise BundleError(f"{where}: bundle has no labels")
    if not all(isinstance(label, str) and label for label in labels) or len(set(labels)) != len(labels):
        raise BundleError(f"{where}: labels must be distinct non-empty strings")
    background = manifest.get("background_labels", [])
    if not isinstance(background, list) or any(label not in labels for label in background):
        raise BundleError(f"{where}: background_labels {background!r} must be a list of labels")
    model_info = _need(manifest, "model", dict, where)
    digest = hashlib.sha256(model).hexdigest()
    if model_info.get("sha256") != digest:
        raise BundleError(f"{where}: model hash mismatch: manifest says {model_info.get('sha256')}, model is {digest}")
    try:
        frontend = FrontEndParams.from_dict(_need(manifest, "frontend", dict, where))
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{where}: {exc}") from None
    window = _need(manifest, "window", dict, where)
    frames, hop = window.get("frames"), window.get("hop_frames")
    if not (isinstance(frames, int) and isinstance(hop, int) and frames > 0 and 0 < hop):
        raise BundleError(f"{where}: window frames and hop_frames must be positive integers, got {frames!r}, {hop!r}")
    return Bundle(
        name=str(_need(manifest, "name", str, where)),
        version=str(_need(manifest, "version", str, where)),
        labels=tuple(labels),
        background_labels=tuple(background),
        frontend=frontend,
        window_frames=frames,
        hop_frames=hop,
        input=_quantization(_need(manifest, "input", dict, where), "input", where),
        output=_quantization(_need(manifest, "output", dict, where), "output", where),
        model=model,
        created=str(manifest.get("created", "")),
        provenance=dict(manifest.get("provenance") or {}),
        selftest=manifest.get("selftest"),
        signature=manifest.get("signature"),
    )


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read and validate a bundle file (structure and hash; the self-test needs the interpreter)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MANIFEST not in names:
                raise BundleError(f"{path}: not a soundsentry bundle (no {MANIFEST})")
            manifest = json.loads(archive.read(MANIFEST))
            if MODEL not in names:
                raise BundleError(f"{path}: bundle has no {MODEL}")
            model = archive.read(MODEL)
    except zipfile.BadZipFile:
        raise BundleError(f"{path}: not a soundsentry bundle (not a zip archive)") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: manifest is not a JSON object")
    return replace(parse_bundle(manifest, model, str(path)), path=path)


def write_bundle(bundle: Bundle, path: str | os.PathLike) -> Path:
    """Write atomically: a temporary file in the same folder, renamed over `path` when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, json.dumps(bundle.manifest(), indent=2, sort_keys=True))
            archive.writestr(MODEL, bundle.model)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def default_bundle_path() -> Path | None:
    """The model shipped inside the package, or None when this build has none."""
    candidate = resources.files("soundsentry.device.assets") / DEFAULT_BUNDLE
    return Path(str(candidate)) if candidate.is_file() else None
