"""Builds the demo scene shipped with the package: ESC-10 clips (CC BY 3.0) in quiet room noise.

    python -m soundsentry.train.demo --data ../shared/data/esc50-subset --out device/assets

writes demo.flac (mono at the default front end's rate, under a minute), demo.json (what plays when) and
NOTICE.md (credits).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from soundsentry.device.audio import read_audio
from soundsentry.device.frontend import FrontEndParams, Resampler

from .augment import coloured_noise

RATE = FrontEndParams().sample_rate
SCENE = ("dog", "crying_baby", "sneezing", "rooster", "chainsaw", "helicopter")
SOUND_S = 3.0
GAP_S = 4.0
ROOM_DBFS = -55.0


def loudest_stretch(y: np.ndarray, seconds: float) -> np.ndarray:
    """The `seconds` of the clip with the most energy, with short fades."""
    n = int(seconds * RATE)
    running = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    energy = running[n:] - running[:-n]  # each stretch's energy from a running sum: O(len(y)), not O(len(y) * n)
    start = int(np.argmax(energy)) if len(energy) else 0
    out = y[start : start + n].copy()
    ramp = np.linspace(0, 1, int(0.02 * RATE), dtype=np.float32)
    out[: len(ramp)] *= ramp
    out[len(out) - len(ramp) :] *= ramp[::-1]
    return out


def clip_sound(path: Path) -> np.ndarray:
    """The clip at `path` at RATE, cut to its loudest SOUND_S."""
    audio, rate = read_audio(path)
    return loudest_stretch(Resampler(rate, RATE).push(audio, last=True), SOUND_S)


def mix_scene(sounds: list[tuple[str, np.ndarray]], peaks_dbfs: list[float], gaps_s: list[float],
              rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Sounds (label, samples at RATE), each set to peak at its level and followed by its gap, after a lead-in
    of gaps_s[0], in pink room noise at ROOM_DBFS; returns the scene and what plays when."""
    parts = [np.zeros(int(gaps_s[0] * RATE), np.float32)]
    timeline, t = [], len(parts[0]) / RATE
    for (label, sound), peak, gap in zip(sounds, peaks_dbfs, gaps_s[1:], strict=True):
        sound = sound * np.float32(10 ** (peak / 20) / max(np.abs(sound).max(), 1e-6))
        parts += [sound, np.zeros(int(gap * RATE), np.float32)]
        timeline.append({"label": label, "start_s": round(t, 3), "end_s": round(t + len(sound) / RATE, 3)})
        t += (len(sound) + len(parts[-1])) / RATE
    y = np.concatenate(parts)
    return np.clip(y + coloured_noise(len(y), 1.0, ROOM_DBFS, rng), -1, 1).astype(np.float32), timeline


def write_scene(path: Path, scene: np.ndarray, timeline: list[dict]) -> None:
    """The scene as 16-bit FLAC, and what plays when in a .json beside it."""
    sf.write(path, scene, RATE, subtype="PCM_16")
    path.with_suffix(".json").write_text(json.dumps({"rate": RATE, "seconds": round(len(scene) / RATE, 3),
                                                     "events": timeline}, indent=2) + "\n")


def credits(license_text: str, filename: str) -> str:
    stem = filename.rsplit("-", 1)[0]
    found = re.search(rf"^- \[{re.escape(stem)}\.ogg\]: (.+)$", license_text, re.M)
    return found.group(1) if found else "see the ESC-50 LICENSE"


def build(data: Path, out: Path, seed: int = 0) -> dict:
    esc10 = [r for r in csv.DictReader(open(data / "meta" / "esc50.csv")) if r.get("esc10") == "True"]
    license_text = (data / "LICENSE").read_text(errors="replace")
    rows = [sorted((r for r in esc10 if r["category"] == label), key=lambda r: r["filename"])[0] for label in SCENE]
    y, timeline = mix_scene([(label, clip_sound(data / "audio" / row["filename"])) for label, row in zip(SCENE, rows)],
                            [-12.0] * len(SCENE), [GAP_S] * (len(SCENE) + 1), np.random.default_rng(seed))
    for event, row in zip(timeline, rows):
        event["clip"] = row["filename"]
    out.mkdir(parents=True, exist_ok=True)
    write_scene(out / "demo.flac", y, timeline)
    notices = [f"- {row['filename']} ({label}): {credits(license_text, row['filename'])}" for label, row in zip(SCENE, rows)]
    (out / "NOTICE.md").write_text(
        "# Notices for files in this folder\n\n"
        "`demo.flac` mixes clips of the ESC-10 subset of ESC-50 (K. J. Piczak, \"ESC: Dataset for Environmental "
        "Sound Classification\", ACM Multimedia 2015), licensed CC BY 3.0 "
        "(https://creativecommons.org/licenses/by/3.0/), into synthetic pink noise. The clips were cut to their "
        "loudest 3 s and normalised. Clips and their sources:\n\n" + "\n".join(notices) + "\n\n"
        "`default.ssb` was trained on clips of ESC-50, which is licensed CC BY-NC 3.0 "
        "(https://creativecommons.org/licenses/by-nc/3.0/): the model inherits the non-commercial terms.\n")
    return {"seconds": len(y) / RATE, "events": timeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="ESC-50 (or subset) root")
    parser.add_argument("--out", required=True, type=Path, help="folder for demo.flac, demo.json, NOTICE.md")
    args = parser.parse_args()
    print(json.dumps(build(args.data, args.out)))


if __name__ == "__main__":
    main()
