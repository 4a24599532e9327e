"""Loaders for the three layouts, and each way a user's data set can be wrong."""

from __future__ import annotations

import csv
import logging

import pytest

import synth
from conftest import fast_config
from soundsentry.train.datasets import DatasetError, load_dataset
from soundsentry.train.features import BACKGROUND, extract


def test_esc50_layout(tmp_path):
    ds = load_dataset(synth.write_esc50(tmp_path, per_class=2, folds=2))
    assert ds.format == "esc50" and len(ds.clips) == 8 and ds.folds == [1, 2]
    assert ds.labels == sorted(synth.CLASSES)
    assert ds.clips[0].group == ds.clips[0].path.stem.split("-")[1]


def test_real_esc50_subset(esc50_dir):
    ds = load_dataset(esc50_dir)
    assert len(ds.clips) == 292 and len(ds.labels) == 50 and ds.license.startswith("CC BY-NC 3.0")


def test_urbansound8k_layout(tmp_path):
    ds = load_dataset(synth.write_urbansound8k(tmp_path))
    assert ds.format == "urbansound8k" and ds.folds == [1, 2]
    assert all(c.path.parent.name == f"fold{c.fold}" for c in ds.clips)


def test_folder_layout_and_format_flag(tmp_path):
    synth.write_folders(tmp_path, per_class=1)
    ds = load_dataset(tmp_path, "folders")
    assert ds.format == "folders" and ds.labels == sorted(synth.CLASSES)
    with pytest.raises(DatasetError, match="--format 'gtzan' is not one of"):
        load_dataset(tmp_path, "gtzan")


def test_csv_missing_a_column(tmp_path):
    root = synth.write_esc50(tmp_path, per_class=1)
    path = root / "meta" / "esc50.csv"
    rows = list(csv.DictReader(open(path)))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[k for k in rows[0] if k != "category"])
        writer.writeheader()
        writer.writerows([{k: v for k, v in r.items() if k != "category"} for r in rows])
    with pytest.raises(DatasetError, match=r"esc50.csv: missing column 'category'"):
        load_dataset(root)


def test_listed_files_absent_names_first_few_and_count(tmp_path):
    root = synth.write_esc50(tmp_path, per_class=2)
    audio = sorted((root / "audio").iterdir())
    for path in audio[:5]:
        path.unlink()
    with pytest.raises(DatasetError, match=r"5 listed files are absent, first: .*" + audio[0].name) as info:
        load_dataset(root)
    assert audio[3].name not in str(info.value)  # only the first three are named


def test_empty_class_folder(tmp_path):
    synth.write_folders(tmp_path, per_class=1)
    (tmp_path / "glass_breaking").mkdir()
    with pytest.raises(DatasetError, match="class 'glass_breaking' is empty"):
        load_dataset(tmp_path)


def test_not_a_data_set(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a data set"):
        load_dataset(tmp_path)


def test_unreadable_audio_is_skipped_named_and_counted(tmp_path, caplog):
    synth.write_folders(tmp_path, per_class=2)
    bad = tmp_path / "noise" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with caplog.at_level(logging.WARNING):
        features = extract(load_dataset(tmp_path), fast_config(), progress=False)
    assert len(features.skipped) == 1 and str(bad) in features.skipped[0]
    assert str(bad) in caplog.text
    assert len([c for c in features.clips if features.labels[c.label] != BACKGROUND]) == 8


def test_feature_cache_is_reused(tmp_path, caplog):
    data = synth.write_folders(tmp_path / "data", per_class=1)
    cache = tmp_path / "cache"
    first = extract(load_dataset(data), fast_config(), cache, progress=False)
    with caplog.at_level(logging.INFO, logger="soundsentry.train.features"):
        second = extract(load_dataset(data), fast_config(), cache, progress=False)
    assert "features from cache" in caplog.text
    assert len(list(cache.iterdir())) == 1
    assert (first.clips[0].windows == second.clips[0].windows).all()


def test_feature_cache_is_found_from_another_directory(tmp_path, monkeypatch, caplog):
    """The cache is keyed by where the files are, not by how the current directory names them."""
    data = synth.write_folders(tmp_path / "data", per_class=1)
    cache = tmp_path / "cache"
    monkeypatch.chdir(tmp_path)
    extract(load_dataset("data"), fast_config(), cache, progress=False)
    monkeypatch.chdir(data)
    with caplog.at_level(logging.INFO, logger="soundsentry.train.features"):
        extract(load_dataset("."), fast_config(), cache, progress=False)
    assert "features from cache" in caplog.text
    assert len(list(cache.iterdir())) == 1
