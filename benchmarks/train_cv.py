"""Grouped 5-fold CV of the three presets on one data set, in one run, for BENCHMARKS.md.

    python benchmarks/train_cv.py --data ../shared/data/esc50-subset [--presets compact seed-multiscale ...]
                                  [--config FILE]

`--config` is a training config (TOML) every preset runs with, e.g. `[fit] seed = 1` to repeat the run with
other folds, stretch/pitch variants and initial weights.

Each preset runs as its own `soundsentry train --cv --cv-only` process; wall time and peak RSS come from
wait4 on that process. Prints one JSON object with accuracy mean/std per preset and the goal checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PRESETS = ("compact", "seed-multiscale", "baseline-mfcc-logreg")


def run_preset(preset: str, data: str, out: str, cache: str, config: str | None) -> dict:
    cmd = [sys.executable, "-m", "soundsentry.device.cli", "train", "--data", data, "--preset", preset, "--cv",
           "--cv-only", "--out", out, "--cache-dir", cache, "--json", *(["--config", config] if config else [])]
    started = time.monotonic()
    with open(os.path.join(out + ".log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{preset} failed: see {out}.log")
    summary = json.loads(stdout)
    cv = summary["cv"]
    return {"accuracy_mean": cv["accuracy_mean"], "accuracy_std": cv["accuracy_std"],
            "macro_f1_mean": cv["macro_f1_mean"], "folds": [f["accuracy"] for f in cv["folds"]],
            "params": cv["params"], "wall_s": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "protocol": cv["protocol"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--config", help="training config (TOML) for every preset, e.g. another fit.seed")
    parser.add_argument("--out", help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args()
    root = args.out or tempfile.mkdtemp(prefix="soundsentry-cv-")
    os.makedirs(root, exist_ok=True)
    cache = os.path.join(root, "cache")
    results = {}
    for preset in args.presets:  # each result goes to stderr as it lands, so a cut-short run keeps them
        results[preset] = run_preset(preset, args.data, os.path.join(root, preset), cache, args.config)
        print(json.dumps({preset: results[preset]}), file=sys.stderr, flush=True)
    report = {"data": args.data, "config": args.config, "cpus": os.cpu_count(), "results": results}
    if {"compact", "seed-multiscale", "baseline-mfcc-logreg"} <= set(results):
        c, s, b = (results[p] for p in ("compact", "seed-multiscale", "baseline-mfcc-logreg"))
        report["goals"] = {
            "compact_minus_baseline_points": 100 * (c["accuracy_mean"] - b["accuracy_mean"]),
            "compact_minus_seed_multiscale_points": 100 * (c["accuracy_mean"] - s["accuracy_mean"]),
            "compact_params_over_seed_multiscale": c["params"] / s["params"],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
