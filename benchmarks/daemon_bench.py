"""Daemon figures for BENCHMARKS.md: CPU, memory, start-up and event latency of `soundsentry run`.

    python benchmarks/daemon_bench.py [--model BUNDLE] [--mic] [--shifts 0.09 0.18] [--scene SCENE.flac]

Runs, in one go: a bare `python -c "import numpy"` (the reference), the daemon on a file in real time,
the daemon on the PulseAudio virtual microphone (--mic, PulseAudio must be running), and --fast over
thirty minutes of audio. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import soundfile as sf

from soundsentry.device.sources import demo_scene_path

CLI = [sys.executable, "-m", "soundsentry.device.cli"]


def child_usage(cmd: list[str], *, during=None) -> dict:
    """Run a command; wall time, CPU time, peak RSS, and when each stdout/stderr line arrived.

    Peak RSS is the child's own VmHWM from /proc, read with the CPU samples: wait4's ru_maxrss is not, since
    Linux carries the parent's high-water mark over fork and exec (this script's 30-minute test file once
    showed up as a 149 MB "daemon")."""
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: dict[str, list] = {"out": [], "err": []}

    def read(stream, key):
        for line in stream:
            lines[key].append((time.time(), line.rstrip("\n")))

    samples: list[tuple[float, float]] = []
    hwm_kb = [0]

    def sample():  # CPU seconds of all the process's threads and its RSS high-water mark, until it exits
        while proc.poll() is None:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                break
            samples.append((time.time(), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")))
            hwm_kb[0] = max([hwm_kb[0]] + [int(line.split()[1]) for line in status.splitlines()
                                           if line.startswith("VmHWM:")])
            time.sleep(0.2)

    threads = [threading.Thread(target=read, args=(proc.stdout, "out")),
               threading.Thread(target=read, args=(proc.stderr, "err")), threading.Thread(target=sample)]
    for r in threads:
        r.start()
    if during:
        during(proc, lines)
    _, status, usage = os.wait4(proc.pid, 0)
    for r in threads:
        r.join()
    wall = time.time() - started
    cpu = usage.ru_utime + usage.ru_stime
    return {"started": started, "wall_s": wall, "cpu_s": cpu, "cpu_percent_of_one_core": 100 * cpu / wall,
            "peak_rss_mb": hwm_kb[0] / 1024, "status": os.waitstatus_to_exitcode(status), "lines": lines,
            "samples": samples}


def steady_cpu_percent(run: dict) -> float | None:
    """CPU % of one core from the first window classified to the last sample: the daemon's running cost,
    without the one-off start-up (imports, model load) that a whole-run average mixes in."""
    began = startup_s(run)
    if began is None:
        return None
    after = [(t, c) for t, c in run["samples"] if t >= run["started"] + began]
    if len(after) < 2 or after[-1][0] - after[0][0] < 5:
        return None
    return 100 * (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])


def startup_s(run: dict) -> float | None:
    for t, line in run["lines"]["err"]:
        if "first window classified" in line:
            return t - run["started"]
    return None


def latencies(run: dict, truth: list[dict], origin: float | None, window_s: float = 2.0) -> list[float]:
    """Per true sound, seconds from its onset to the arrival of the first start message of its label while it
    plays or within `window_s` after; `origin` is the wall time the scene began (None: the daemon's own
    stream clock, right for a file source). Sounds with no such message are left out (counted as missed)."""
    starts = []
    for t, line in run["lines"]["out"]:
        message = json.loads(line)
        if message["type"] != "start":
            continue
        began = origin
        if began is None:
            began = datetime.fromisoformat(message["start"].replace("Z", "+00:00")).timestamp() - message["stream_start_s"]
        starts.append((t - began, message["label"]))
    out = []
    for sound in truth:
        found = [t for t, label in starts if label == sound["label"] and sound["start_s"] <= t <= sound["end_s"] + window_s]
        if found:
            out.append(min(found) - sound["start_s"])
    return out


def summary(run: dict, truth: list[dict] | None = None, origin: float | None = None) -> dict:
    result = {k: round(v, 4) if isinstance(v, float) else v for k, v in run.items()
              if k not in ("lines", "started", "samples")}
    result["startup_to_first_window_s"] = startup_s(run)
    result["steady_cpu_percent_of_one_core"] = steady_cpu_percent(run)
    result["events"] = sum(1 for _, line in run["lines"]["out"] if '"type": "start"' in line)
    if truth:
        lat = latencies(run, truth, origin)
        result["sounds_found"] = f"{len(lat)} of {len(truth)}"
        result["onset_to_start_message_s"] = {"each": [round(x, 3) for x in lat] if len(lat) <= 12 else "...",
                                              "median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
                                              "max": float(np.max(lat))} if lat else None
    return result


SINK = "soundsentry_bench_mic"
LOW_LATENCY = "--latency-msec=20"  # a USB microphone's ALSA period is of this order


def play_scene(scene: Path, latency: list[str]) -> float:
    """Play the scene into the sink; return the wall time its first sample was heard.

    The median over paplay's own reports of its playback position ("Time: 1.213 sec", every 50 ms), not
    the moment paplay was started: its start-up, and a suspended sink's 2 s resume, come before the first sample."""
    proc = subprocess.Popen(["paplay", "-v", f"--device={SINK}", *latency, str(scene)], stderr=subprocess.PIPE,
                            text=True)  # text mode reads paplay's \r-ended status lines as lines
    origins = []
    for line in proc.stderr:
        position = re.search(r"Time: ([0-9.]+) sec", line)
        if position and float(position[1]) > 0:
            origins.append(time.time() - float(position[1]))
    if proc.wait() != 0 or not origins:
        raise SystemExit(f"paplay failed or reported no playback position for {scene}")
    return float(np.median(origins))


def mic_run(scene: Path, truth: list[dict], model: list[str], *, room: bool) -> dict:
    """The daemon on the virtual mic, the scene played once the first window is classified.

    PulseAudio's null sink renders in blocks as long as its players ask for (2 s when nobody asks, and
    2 s to resume when suspended): with `room`, a 20 ms player of silence keeps it running before the daemon
    starts and the scene is played at 20 ms, as a live microphone in a room behaves; without, the sink is
    suspended at start and paplay uses its default latency."""
    played: list[float] = []
    latency = [LOW_LATENCY] if room else []

    def play(proc, lines):
        while not any("first window classified" in line for _, line in lines["err"]):
            time.sleep(0.05)
        played.append(play_scene(scene, latency))
        time.sleep(2)
        proc.terminate()

    silence = None
    if room:
        silence = subprocess.Popen(["pacat", "--playback", f"--device={SINK}", LOW_LATENCY, "--raw",
                                    "--format=s16le", "--rate=44100", "--channels=1", "/dev/zero"])
        time.sleep(3)  # the sink finishes the 2 s block it was rendering before it takes the 20 ms one
    try:
        run = child_usage([*CLI, "run", "--source", "mic:pulse", *model], during=play)
    finally:
        if silence:
            silence.terminate()
            silence.wait()
    return summary(run, truth, origin=played[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle (default: the shipped one)")
    parser.add_argument("--mic", action="store_true", help="also run through the PulseAudio virtual mic")
    parser.add_argument("--shifts", type=float, nargs="*", default=[],
                        help="also run the file delayed by these seconds (the scene's own end put in front): "
                             "where sounds fall on the window grid moves their latency")
    parser.add_argument("--scene", type=Path, help="a longer scene, its truth in a .json beside it "
                                                   "(benchmarks/event_rule_bench.py --write-scene); default: the demo")
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    scene = args.scene or demo_scene_path()
    truth = json.loads(scene.with_suffix(".json").read_text())["events"]  # demo.flac has its demo.json too
    report: dict = {"scene": str(scene), "scene_s": sf.info(scene).duration}
    # The reference ends before a sample could catch it: it prints its own high-water mark.
    ref = child_usage([sys.executable, "-c", "import numpy; print(open('/proc/self/status').read())"])
    ref["peak_rss_mb"] = next(int(line.split()[1]) for _, line in ref["lines"]["out"] if line.startswith("VmHWM:")) / 1024
    report["reference_python_numpy"] = summary(ref)
    report["file_realtime"] = summary(child_usage([*CLI, "run", "--source", f"file:{scene}", *model]), truth)
    audio, rate = sf.read(scene, dtype="float32")
    for shift in args.shifts:
        with tempfile.TemporaryDirectory() as tmp:
            shifted = Path(tmp) / "shifted.flac"
            sf.write(shifted, np.concatenate([audio[len(audio) - int(shift * rate):], audio]), rate)
            moved = [dict(e, start_s=e["start_s"] + shift) for e in truth]
            run = child_usage([*CLI, "run", "--source", f"file:{shifted}", *model])
            report[f"file_realtime_shifted_{shift}s"] = summary(run, moved)
    if args.mic:
        module = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={SINK}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(["pactl", "set-default-source", f"{SINK}.monitor"], check=True)
        try:
            report["virtual_mic"] = mic_run(scene, truth, model, room=True)
            if not args.scene:  # the suspended sink's start-up is PulseAudio's, whatever the scene
                time.sleep(6)  # long enough for PulseAudio to suspend the idle sink
                report["virtual_mic_idle_sink"] = mic_run(scene, truth, model, room=False)
        finally:
            subprocess.run(["pactl", "unload-module", module], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / "thirty_minutes.flac"
        reps = int(np.ceil(1800 / (len(audio) / rate)))
        sf.write(long, np.tile(audio, reps)[: 1800 * rate], rate)
        fast = summary(child_usage([*CLI, "run", "--source", f"file:{long}", "--fast", *model]))
        fast["audio_s"] = 1800.0
        fast["real_time_factor"] = fast["wall_s"] / 1800.0
        report["fast_30_min"] = fast
    ref = report["reference_python_numpy"]
    report["ratios"] = {
        "startup_over_python_numpy": report["file_realtime"]["startup_to_first_window_s"] / ref["wall_s"],
        "rss_over_python_numpy": report["file_realtime"]["peak_rss_mb"] / ref["peak_rss_mb"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
