"""Bundle round trip and every kind of bad bundle, each named in one line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from soundsentry.device.bundle import MANIFEST, MODEL, BundleError, read_bundle, write_bundle
from soundsentry.device.classifier import Classifier, open_model


def rewrite(src: Path, dst: Path, edit=None, model: bytes | None = None) -> Path:
    with zipfile.ZipFile(src) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        tflite = archive.read(MODEL)
    if edit:
        edit(manifest)
    with zipfile.ZipFile(dst, "w") as archive:
        archive.writestr(MANIFEST, json.dumps(manifest))
        archive.writestr(MODEL, model if model is not None else tflite)
    return dst


def test_round_trip_keeps_everything(tone_bundle, tmp_path):
    bundle = read_bundle(tone_bundle)
    copy = read_bundle(write_bundle(bundle, tmp_path / "copy.ssb"))
    assert copy.manifest() == bundle.manifest()
    assert copy.labels == ("chirp", "high_tone", "low_tone", "noise", "background")
    assert copy.background_labels == ("background",)
    assert copy.input.dtype == "int8" and copy.output.dtype == "int8"
    assert copy.provenance["conversion"]["quant"] == "int8"
    classifier = open_model(copy.path)
    assert classifier.self_test() <= 0.02
    scores = classifier(np.full((bundle.window_frames, bundle.frontend.n_mels), -50.0, np.float32))
    assert scores.shape == (5,) and abs(float(scores.sum()) - 1.0) < 0.05


def test_write_is_atomic_and_leaves_no_temporary(tone_bundle, tmp_path):
    write_bundle(read_bundle(tone_bundle), tmp_path / "b.ssb")
    assert [p.name for p in tmp_path.iterdir()] == ["b.ssb"]


def set_key(path: str, value):
    def edit(manifest):
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (set_key("labels", KeyError), "manifest has no 'labels'"),
    (set_key("labels", []), "bundle has no labels"),
    (set_key("labels", ["a", "b", "c", "background"]), "4 labels but the model has 5 outputs"),
    (set_key("background_labels", ["silence"]), "background_labels"),
    (set_key("model.sha256", "0" * 64), "model hash mismatch"),
    (set_key("frontend.n_mfcc", 13), "unknown front-end parameter 'n_mfcc'"),
    (set_key("frontend.n_mels", 40), "does not fit window"),
    (set_key("format", "something-else"), "not a soundsentry bundle"),
    (set_key("input.scale", 0.5), "input quantization"),
    (set_key("selftest.output", [0.96, 0.01, 0.01, 0.01, 0.01]), "self-test mismatch"),
    (set_key("selftest", None), "no self-test vector"),
])
def test_bad_manifest_is_named(tone_bundle, tmp_path, edit, message):
    bad = rewrite(tone_bundle, tmp_path / "bad.ssb", edit)
    with pytest.raises(BundleError, match=message) as info:
        open_model(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_hash_catches_a_changed_model(tone_bundle, tmp_path):
    model = bytearray(read_bundle(tone_bundle).model)
    model[-1] ^= 0xFF
    with pytest.raises(BundleError, match="model hash mismatch"):
        read_bundle(rewrite(tone_bundle, tmp_path / "b.ssb", model=bytes(model)))


@pytest.mark.parametrize("content, message", [
    (b"not a zip at all", "not a zip archive"),
    (None, "no manifest.json"),
])
def test_not_a_bundle(tmp_path, content, message):
    path = tmp_path / "x.ssb"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("other.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(BundleError, match=message):
        read_bundle(path)


def test_missing_file(tmp_path):
    with pytest.raises(BundleError, match="no such bundle file"):
        read_bundle(tmp_path / "absent.ssb")


def test_model_that_is_not_tflite(tone_bundle, tmp_path):
    junk = b"\x00" * 64
    import hashlib
    bad = rewrite(tone_bundle, tmp_path / "b.ssb", set_key("model.sha256", hashlib.sha256(junk).hexdigest()), model=junk)
    with pytest.raises(BundleError, match="not a usable TFLite model"):
        Classifier(read_bundle(bad))
