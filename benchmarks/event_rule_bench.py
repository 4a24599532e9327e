"""Onset latency against false starts for event rules, on a long scene made from a data set's clips.

    python benchmarks/event_rule_bench.py --data ../shared/data/esc50-subset [--model BUNDLE] [--sounds N]
        [--write-scene scene.flac] [--mic no_bass|dull|telephone|resonance]

Every clip of the data set is cut to its loudest 3 s, set to a random peak level and placed in quiet pink
noise with gaps of random length (so each sound falls on the window grid at a random phase). The scene is
scored once by the device pipeline; each rule then runs its own EventDetector over the same scores, so
the rules differ in nothing else. A start is a hit when its label is the sound's and it comes while the
sound plays (or within a window after); a start of another label then is a confusion, and a start with no
sound in its window a false start in quiet. Latency is from the sound's onset to the end of the window
that emitted the start. With --mic, the whole scene is heard through one of mic_shift.py's stand-in
microphones. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from soundsentry.device.bundle import default_bundle_path, read_bundle
from soundsentry.device.classifier import Classifier
from soundsentry.device.events import EventDetector, EventsConfig, StreamClock
from soundsentry.device.pipeline import Pipeline
from soundsentry.train.datasets import load_dataset
from soundsentry.train.demo import RATE, clip_sound, mix_scene, write_scene

from mic_shift import microphones

RULES = {
    "n2-of-3 on 0.5 (the default until session 4)": {"n": 2, "m": 3, "on": 0.5},
    "n1-of-1 on 0.5": {"n": 1, "m": 1, "on": 0.5},
    "n1-of-1 on 0.55": {"n": 1, "m": 1, "on": 0.55},
    "n1-of-1 on 0.6 (the default in session 5)": {"n": 1, "m": 1, "on": 0.6},
    "n1-of-1 on 0.7 (the default)": {"n": 1, "m": 1, "on": 0.7},
    "n1-of-1 on 0.8": {"n": 1, "m": 1, "on": 0.8},
    "n1-of-1 on 0.9": {"n": 1, "m": 1, "on": 0.9},
}


def build_scene(data: str, seed: int, sounds: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """Clips of the data set (all, or the first `sounds` of a shuffle) placed as `place_sounds` does."""
    rng = np.random.default_rng(seed)
    dataset = load_dataset(data)
    clips = [dataset.clips[i] for i in rng.permutation(len(dataset.clips))[:sounds]]
    return place_sounds([(clip.label, clip_sound(clip.path)) for clip in clips], rng)


def place_sounds(sounds: list[tuple[str, np.ndarray]], rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Each sound once at a random peak level, after 3 s of quiet and then with gaps of 2.5 to 5.5 s, in the
    demo's pink room noise."""
    peaks, gaps = [], [3.0]
    for _ in sounds:  # drawn in this order so that a seed keeps making the scene it made
        peaks.append(float(rng.uniform(-30.0, -6.0)))
        gaps.append(float(rng.uniform(2.5, 5.5)))
    return mix_scene(sounds, peaks, gaps, rng)


def score(bundle, scene: np.ndarray) -> list:
    classifier = Classifier(bundle)
    detector = EventDetector(classifier.labels, EventsConfig(), device_id="bench", model={}, clock=StreamClock(0.0))
    pipeline = Pipeline(classifier, detector, RATE)
    scored = []
    for start in range(0, len(scene), 1024):
        scored += pipeline.push(scene[start : start + 1024])[0]
    return scored + pipeline.finish()[0]


def judge(bundle, scored: list, truth: list[dict], rule: dict) -> dict:
    labels = bundle.labels
    detector = EventDetector(labels, EventsConfig(**rule), device_id="bench", model={}, clock=StreamClock(0.0),
                             background=bundle.background_labels)
    starts = []
    for s in scored:
        for message in detector.update(s.centre_s, s.scores, s.peak):
            if message["type"] == "start":
                starts.append((s.end_s, message["label"]))
    window_s = bundle.window_s
    onsets = np.array([e["start_s"] for e in truth])
    hits, confusions, quiet, first_hit = 0, 0, 0, {}
    for emitted, label in starts:
        # the sound whose span (plus a window, for the scores' tail) holds the emitting window's end
        k = int(np.searchsorted(onsets, emitted, side="right")) - 1
        if k < 0 or emitted > truth[k]["end_s"] + window_s:
            quiet += 1
        elif label == truth[k]["label"]:
            hits += 1
            first_hit.setdefault(k, emitted - truth[k]["start_s"])
        else:
            confusions += 1
    latency = np.array(sorted(first_hit.values()))
    hours = scored[-1].end_s / 3600
    return {**rule, "sounds_found": len(first_hit), "sounds": len(truth), "hits": hits, "confusions": confusions,
            "false_starts_in_quiet": quiet, "false_starts_in_quiet_per_hour": round(quiet / hours, 1),
            "latency_median_s": round(float(np.median(latency)), 3) if len(latency) else None,
            "latency_p90_s": round(float(np.percentile(latency, 90)), 3) if len(latency) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", help="bundle (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sounds", type=int, help="use only this many clips (default: all)")
    parser.add_argument("--write-scene", type=Path, metavar="FLAC",
                        help="also write the scene there, its truth beside it as .json (for daemon_bench.py --scene)")
    parser.add_argument("--mic", choices=sorted(microphones(RATE)), help="hear the scene through this filter")
    args = parser.parse_args()
    bundle = read_bundle(args.model or default_bundle_path())
    scene, truth = build_scene(args.data, args.seed, args.sounds)
    if args.mic:
        scene = microphones(RATE)[args.mic](scene)
    if args.write_scene:
        write_scene(args.write_scene, scene, truth)
    started = time.monotonic()
    scored = score(bundle, scene)
    report = {"model": f"{bundle.name} {bundle.version}", "mic": args.mic or "clean",
              "scene_s": round(len(scene) / RATE, 1), "sounds": len(truth), "scoring_s": round(time.monotonic() - started, 2),
              "goal_latency_s": round(bundle.window_s + bundle.hop_s + 0.1, 3),
              "rules": {name: judge(bundle, scored, truth, rule) for name, rule in RULES.items()}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
