"""Seeded synthetic audio and tiny data sets in the three layouts, for fast, exact tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def tone(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise_burst(seconds: float, rate: int = RATE, amplitude: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(seconds * rate))).clip(-1, 1).astype(np.float32)


def fade(y: np.ndarray, rate: int = RATE, seconds: float = 0.01) -> np.ndarray:
    """Short raised-cosine fades, so sound onsets do not click."""
    n = min(int(seconds * rate), len(y) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
    y = y.copy()
    y[:n] *= ramp
    y[len(y) - n :] *= ramp[::-1]
    return y


CLASSES = {
    "low_tone": lambda seed, s=1.5: tone(300 + 40 * (seed % 3), s),
    "high_tone": lambda seed, s=1.5: tone(3000 + 200 * (seed % 3), s),
    "chirp": lambda seed, s=1.5: chirp(500, 4000, s),
    "noise": lambda seed, s=1.5: noise_burst(s, seed=seed),
}


def clip(label: str, seed: int, seconds: float = 1.5, rate: int = RATE, quiet: float = 0.0) -> np.ndarray:
    """One labelled clip: the class's sound, faded, over faint noise."""
    y = fade(CLASSES[label](seed, seconds))
    if quiet:
        y = y + noise_burst(len(y) / RATE, amplitude=quiet, seed=seed + 1000)
    if rate != RATE:
        import soxr

        y = soxr.resample(y, RATE, rate).astype(np.float32)
    return y


def write_folders(root: Path, per_class: int = 3, labels=tuple(CLASSES), seconds: float = 1.5) -> Path:
    for label in labels:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sf.write(root / label / f"{label}_{i}.wav", clip(label, i, seconds, quiet=0.003), RATE)
    return root


def write_esc50(root: Path, per_class: int = 3, labels=tuple(CLASSES), folds: int = 1) -> Path:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    rows = []
    for target, label in enumerate(labels):
        for i in range(per_class):
            fold = 1 + i % folds
            name = f"{fold}-{target}{i:03d}-A-{target}.wav"
            sf.write(root / "audio" / name, clip(label, i, quiet=0.003), RATE)
            rows.append({"filename": name, "fold": fold, "target": target, "category": label,
                         "esc10": "False", "src_file": f"{target}{i:03d}", "take": "A"})
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def write_urbansound8k(root: Path, per_class: int = 2, labels=tuple(CLASSES), folds: int = 2) -> Path:
    rows = []
    for class_id, label in enumerate(labels):
        for i in range(per_class):
            fold = 1 + i % folds
            (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
            name = f"{100 + class_id}-{class_id}-0-{i}.wav"
            seconds = 0.7 + 0.5 * i  # clips of varying length, one shorter than a window
            sf.write(root / "audio" / f"fold{fold}" / name, clip(label, i, seconds, quiet=0.003), RATE)
            rows.append({"slice_file_name": name, "fsID": 100 + class_id, "start": 0, "end": seconds,
                         "salience": 1, "fold": fold, "classID": class_id, "class": label})
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    with open(root / "metadata" / "UrbanSound8K.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


SCENE = (("high_tone", 2.0), ("low_tone", 6.0), ("chirp", 9.5))


def write_scene(path: Path, rate: int = RATE, seconds: float = 12.0, events=SCENE, sound_s: float = 1.5) -> list:
    """Faint noise with known sounds at known times; returns [(label, start_s, end_s)]."""
    y = noise_burst(seconds, amplitude=0.003, seed=9)
    truth = []
    for label, start in events:
        c = clip(label, 0, sound_s)
        i = int(start * RATE)
        y[i : i + len(c)] += c
        truth.append((label, start, start + sound_s))
    if rate != RATE:
        import soxr

        y = soxr.resample(y, RATE, rate).astype(np.float32)
    sf.write(path, y, rate)
    return truth


def check_against_truth(messages: list[dict], truth: list, offset_s: float = 0.0, key: str = "stream_start_s"):
    """Every true sound has a start and an end of its label within a second; nothing else happened."""
    starts = [m for m in messages if m["type"] == "start"]
    ends = {m["id"]: m for m in messages if m["type"] == "end"}
    assert [m["label"] for m in starts] == [label for label, _, _ in truth], messages
    for m, (label, t0, t1) in zip(starts, truth):
        assert abs(m[key] - offset_s - t0) <= 1.0, (m, t0)
        end = ends[m["id"]]
        assert abs(end["stream_end_s"] - end["stream_start_s"] - (t1 - t0)) <= 1.0, (end, t1 - t0)
        for field in ("id", "device_id", "label", "score", "mean_score", "start", "end", "stream_start_s",
                      "stream_end_s", "dbfs", "model"):
            assert field in end
        assert set(end["model"]) == {"name", "version", "sha256"}
