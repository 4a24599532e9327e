"""Conversion in all modes, the agreement check, bad inputs, and `bench --json`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from soundsentry.convert.convert import convert_model
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.classifier import open_model


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundsentry.device.cli", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("quant, dtype", [("int8", "int8"), ("float16", "float32"), ("float32", "float32"),
                                          ("dynamic", "float32")])
def test_every_mode_converts_and_self_tests(tone_run, tone_data, tmp_path, quant, dtype):
    out = tmp_path / f"{quant}.ssb"
    report = convert_model(tone_run / "model.keras", tone_data, out, quant=quant, name="tones", version="2")
    assert report["agreement"] >= 0.97 and report["quant"] == quant
    classifier = open_model(out)
    assert classifier.bundle.input.dtype == dtype and classifier.bundle.version == "2"
    assert classifier.bundle.provenance["conversion"]["agreement"] == report["agreement"]
    assert classifier.bundle.background_labels == ("background",)


def quiet_copy(src, dst, gain: float = 1e-3):
    """The same data set 60 dB quieter: calibration data of the wrong scale."""
    shutil.copytree(src, dst)
    for path in dst.rglob("*.wav"):
        audio, rate = sf.read(path, dtype="float32")
        sf.write(path, audio * gain, rate)
    return dst


def test_sabotaged_calibration_is_refused_unless_forced(tone_run, tone_data, tmp_path):
    quiet = quiet_copy(tone_data, tmp_path / "quiet")
    out = tmp_path / "sabotaged.ssb"
    args = [str(tone_run / "model.keras"), "--calibration", str(quiet), "--check-data", str(tone_data),
            "--out", str(out), "--no-cache"]
    refused = cli("convert", *args)
    assert refused.returncode == 1
    assert "agrees with Keras on only" in refused.stderr.strip().splitlines()[-1]
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []
    forced = cli("convert", *args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["agreement"] < 0.97 and out.is_file()


def test_not_a_keras_model(tone_data, tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    with pytest.raises(SoundsentryError, match="not a Keras model"):
        convert_model(fake, tone_data, tmp_path / "out.ssb")
    assert not (tmp_path / "out.ssb").exists()


def test_input_shape_that_does_not_fit_the_front_end(tone_run, tone_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tone_run, run)
    info = json.loads((run / "run.json").read_text())
    info["frontend"]["n_mels"] = 40
    (run / "run.json").write_text(json.dumps(info))
    result = cli("convert", str(run / "model.keras"), "--calibration", str(tone_data), "--out",
                 str(tmp_path / "out.ssb"))
    assert result.returncode == 1 and "does not fit the front end" in result.stderr
    assert not (tmp_path / "out.ssb").exists()


def test_empty_calibration_set(tone_run, tmp_path):
    empty = tmp_path / "empty"
    (empty / "dog").mkdir(parents=True)
    (empty / "cat").mkdir()
    result = cli("convert", str(tone_run / "model.keras"), "--calibration", str(empty), "--out",
                 str(tmp_path / "out.ssb"))
    assert result.returncode == 1
    assert "class 'cat' is empty" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out.ssb").exists()


def test_bench_json_fields(tone_bundle):
    result = cli("bench", "--model", str(tone_bundle), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"streaming_s", "librosa_recompute_s", "speedup", "speedup_range", "pairs"} <= set(report["frontend"])
    assert isinstance(report["invoke_ms"]["int8"], float)
    assert isinstance(report["invoke_ms"]["float32"], float)  # provenance names the Keras model, which exists
    assert {"elapsed_s", "real_time_factor"} <= set(report["pipeline"])
    assert {"pipeline_process", "python_numpy_reference", "ratio"} <= set(report["rss_mb"])
    assert np.isfinite(report["rss_mb"]["ratio"])
