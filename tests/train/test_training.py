"""Training on synthetic tones, grouped splits, and `evaluate --json`."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

import synth
from conftest import fast_config
from soundsentry.train.datasets import load_dataset
from soundsentry.train.features import extract
from soundsentry.train.run import cv_splits, val_split


def test_a_few_epochs_on_tones_beat_chance(tone_run):
    info = json.loads((tone_run / "run.json").read_text())
    assert info["labels"] == ["chirp", "high_tone", "low_tone", "noise", "background"]
    chance = 1 / len(info["labels"])
    assert info["summary"]["validation"]["accuracy"] >= 0.75 > 3 * chance
    for name in ("model.keras", "config.toml", "history.csv", "curves.png", "confusion.png", "per_class.md",
                 "model_card.md"):
        assert (tone_run / name).is_file(), name
    card = (tone_run / "model_card.md").read_text()
    assert "parameters" in card and "Licence of the data" in card


def test_run_records_the_machine_that_decides_its_numbers(tone_run, monkeypatch):
    """Runs reproduce each other only on the same numeric paths: run.json says which ones this run took."""
    from soundsentry.train.machine import machine_info

    machine = json.loads((tone_run / "run.json").read_text())["machine"]
    assert machine["packages"]["numpy"] == np.__version__ and machine["cpu"]
    assert machine["blas"] and all(name.startswith(("openblas", "mkl", "blis")) for name in machine["blas"])
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine_info()["environment"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_grouped_folds_never_split_a_recording(tmp_path):
    root = synth.write_esc50(tmp_path, per_class=5)
    features = extract(load_dataset(root), fast_config(), progress=False)
    groups = features.groups
    protocol, splits = cv_splits(features, 5, seed=0)
    assert "grouped by recording" in protocol and len(splits) == 5
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
    assert sorted(np.concatenate([t for _, t in splits]).tolist()) == list(range(len(groups)))


def test_own_folds_are_used_when_there_are_several(tmp_path):
    features = extract(load_dataset(synth.write_urbansound8k(tmp_path)), fast_config(), progress=False)
    protocol, splits = cv_splits(features, 5, seed=0)
    assert protocol.startswith("leave-one-fold-out") and len(splits) == 2


def test_evaluate_json_on_tones(tone_bundle, tmp_path):
    data = synth.write_folders(tmp_path / "eval", per_class=2, labels=("chirp", "high_tone", "low_tone", "noise"))
    (data / "doorbell").mkdir()
    sf.write(data / "doorbell" / "ding.wav", synth.tone(1200, 1.0), 16000)
    result = subprocess.run([sys.executable, "-m", "soundsentry.device.cli", "evaluate", "--data", str(data),
                             "--model", str(tone_bundle), "--json", "--no-cache"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("accuracy", "macro_f1", "n", "per_class", "confusion", "classes_not_in_model"):
        assert key in report
    assert report["classes_not_in_model"] == ["doorbell"] and report["clips_not_in_model"] == 1
    assert report["n"] == 8 and report["accuracy"] >= 0.75
    assert set(report["per_class"]) == {"chirp", "high_tone", "low_tone", "noise"}


def test_time_statistics_layers_match_numpy():
    from soundsentry.train.model import STATISTICS, TimeStat, dct_matrix

    x = np.random.default_rng(0).normal(size=(3, 64, 10)).astype(np.float32)
    mean = x.mean(1)
    want = {"mean": mean, "deviation": np.abs(x - mean[:, None]).mean(1), "max": x.max(1), "min": x.min(1),
            "change": np.abs(np.diff(x, axis=1)).mean(1)}
    for stat in STATISTICS:
        assert np.allclose(np.asarray(TimeStat(stat)(x)), want[stat], atol=1e-5), stat
    d = dct_matrix(64, 40)
    assert np.allclose(d.T @ d, np.eye(40), atol=1e-5)  # orthonormal columns, as scipy's DCT-II with norm="ortho"


def test_default_compact_fits_the_parameter_bound():
    """The issue's bound on the default model: at most 120k parameters on the default window and 51 labels."""
    from soundsentry.train.config import TrainConfig
    from soundsentry.train.model import build_model

    config = TrainConfig()
    model = build_model("compact", (config.window.frames, config.frontend.n_mels), 51)
    assert model.count_params() <= 120_000


def test_model_table_is_validated(tmp_path):
    from soundsentry.device.errors import UsageError
    from soundsentry.train.config import load_train_config

    path = tmp_path / "train.toml"
    path.write_text("[model]\nwidths = [8, 8]\nstrides = [2]\n")
    with pytest.raises(UsageError) as info:
        load_train_config(path)
    assert "model" in str(info.value) and "widths" in str(info.value)
    path.write_text("[model]\nstem = 0\n")
    with pytest.raises(UsageError, match=r"^model\.stem"):
        load_train_config(path)
    path.write_text("[model]\nstem_strides = [2]\n")
    with pytest.raises(UsageError, match=r"^model: .*stem_strides needs 2 values"):
        load_train_config(path)
    path.write_text("[model]\nstem_strides = [2, 1]\n")
    assert load_train_config(path).model.stem_strides == (2, 1)


def test_weight_decay_shrinks_kernels_only(tmp_path):
    import keras

    from soundsentry.device.errors import UsageError
    from soundsentry.train.config import FitConfig, load_train_config
    from soundsentry.train.fit import make_optimizer

    path = tmp_path / "train.toml"
    path.write_text("[fit]\nweight_decay = -0.1\n")
    with pytest.raises(UsageError, match=r"^fit\.weight_decay"):
        load_train_config(path)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, bias_initializer="ones"),
                              keras.layers.BatchNormalization()])
    before = {v.name: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    for decay in (0.0, 0.5):
        for v in model.trainable_variables:
            v.assign(before[v.name])
        optimizer = make_optimizer(FitConfig(weight_decay=decay), 0.1)
        optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in model.trainable_variables])
        after = {v.name: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
        assert np.allclose(after["kernel"], before["kernel"] * (1 - 0.1 * decay), atol=1e-6)
        for name in ("bias", "gamma", "beta"):
            assert np.allclose(after[name], before[name]), name


def test_ema_ends_on_the_moving_average_of_the_weights(tmp_path):
    import keras

    from soundsentry.device.errors import UsageError
    from soundsentry.train.config import FitConfig, load_train_config
    from soundsentry.train.fit import make_optimizer

    path = tmp_path / "train.toml"
    path.write_text("[fit]\nema_momentum = 1.0\n")
    with pytest.raises(UsageError, match=r"^fit\.ema_momentum"):
        load_train_config(path)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    optimizer = make_optimizer(FitConfig(ema_momentum=0.5), 0.1)
    rng = np.random.default_rng(0)
    average = None
    for _ in range(4):
        optimizer.apply_gradients([(rng.normal(size=v.shape).astype(np.float32), v)
                                   for v in model.trainable_variables])
        kernel = keras.ops.convert_to_numpy(model.trainable_variables[0])
        average = kernel if average is None else 0.5 * average + 0.5 * kernel
    assert not np.allclose(kernel, average)
    optimizer.finalize_variable_values(model.trainable_variables)
    assert np.allclose(keras.ops.convert_to_numpy(model.trainable_variables[0]), average, atol=1e-6)


def test_plateau_schedule_needs_a_validation_split(tmp_path):
    from soundsentry.device.errors import UsageError
    from soundsentry.train.config import load_train_config

    path = tmp_path / "train.toml"
    path.write_text('[fit]\nschedule = "plateau"\nval_fraction = 0.0\n')
    with pytest.raises(UsageError, match=r"^fit: schedule .*fit\.val_fraction") as info:
        load_train_config(path)
    assert "\n" not in str(info.value)
    path.write_text('[fit]\nschedule = "plateau"\nval_fraction = 0.2\n')
    assert load_train_config(path).fit.val_fraction == 0.2


def test_with_no_validation_split_every_clip_trains_the_whole_schedule(tone_data, tmp_path):
    from soundsentry.train.run import train

    config = fast_config(epochs=3)
    config = replace(config, fit=replace(config.fit, val_fraction=0.0))
    features = extract(load_dataset(tone_data), config, cache_dir=tmp_path / "cache", progress=False)
    every = np.arange(len(features.clips))
    fit_idx, val_idx = val_split(features, every, 0.0, seed=0)
    assert fit_idx.tolist() == every.tolist() and len(val_idx) == 0
    out = tmp_path / "run"
    train(tone_data, out, config=config, cache_dir=tmp_path / "cache", verbose=0)
    info = json.loads((out / "run.json").read_text())
    assert info["summary"]["epochs"] == 3 and "validation" not in info["summary"]
    header = (out / "history.csv").read_text().splitlines()[0]
    assert "loss" in header and "val_" not in header
    for name in ("confusion.png", "per_class.md", "model_card.md"):
        assert (out / name).is_file(), name
    assert "no recordings were held out" in (out / "model_card.md").read_text()
