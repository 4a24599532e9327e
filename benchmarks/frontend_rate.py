"""What does the 22.05 kHz front end cost a device against the former 16 kHz one? Timed in alternating pairs.

    python benchmarks/frontend_rate.py [--seconds 60] [--pairs 7] [--input-rate 48000]

The 22.05 kHz front end (the default since session 27: 1024-point FFT, 32 ms window, 16 ms hop) keeps the
16 kHz one's 62.5 frames a second, so the CNN's input and cost are unchanged: only the front end differs.
Each pair streams the same capture, at the microphone's rate, through both front ends back to back
(resampling included), so a slow spell of a shared machine hits both; the cost ratio is the median of the
pairs'. Also times one model invoke on the same machine, to show the front end's share of the work per
second of audio. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import numpy as np

from soundsentry.convert.bench import median_time, test_audio
from soundsentry.device.classifier import open_model
from soundsentry.device.frontend import FrontEndParams, StreamingFrontEnd

NARROW = {"sample_rate": 16000, "n_fft": 512, "win_length": 512, "hop_length": 256, "fmax": 8000.0}
WIDE = {"sample_rate": 22050, "n_fft": 1024, "win_length": 706, "hop_length": 353, "fmax": 11025.0}


def stream_seconds(params: FrontEndParams, audio: np.ndarray, input_rate: int, block: int) -> float:
    """Wall time to stream the capture through a fresh front end in blocks of `block` samples."""
    start = time.perf_counter()
    front = StreamingFrontEnd(params, input_rate)
    for i in range(0, len(audio), block):
        front.push(audio[i : i + block])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle (default: the shipped one), for the invoke reference")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--input-rate", type=int, default=48000, help="the microphone's capture rate")
    args = parser.parse_args()

    classifier = open_model(args.model, num_threads=1)
    base = dataclasses.replace(classifier.bundle.frontend, **NARROW)
    wide = dataclasses.replace(classifier.bundle.frontend, **WIDE)
    audio = test_audio(args.seconds, args.input_rate)
    block = args.input_rate // 10  # 100 ms, as the daemon reads
    fronts = {"16k": base, "22k": wide}
    for params in fronts.values():
        stream_seconds(params, audio[: args.input_rate], args.input_rate, block)  # warm: imports, allocator

    times: dict[str, list[float]] = {name: [] for name in fronts}
    for _ in range(args.pairs):
        for name, params in fronts.items():
            times[name].append(stream_seconds(params, audio, args.input_rate, block))
    ratios = [wide_s / base_s for base_s, wide_s in zip(times["16k"], times["22k"])]

    b = classifier.bundle
    window = np.random.default_rng(1).normal(-40, 15, (b.window_frames, base.n_mels)).astype(np.float32)
    invoke_s = median_time(lambda: [classifier(window) for _ in range(300)]) / 300
    windows_per_s = 1.0 / b.hop_s
    print(json.dumps({
        "audio_s": args.seconds, "input_rate": args.input_rate, "pairs": args.pairs,
        "frontend_ms_per_audio_s": {name: 1e3 * statistics.median(t) / args.seconds for name, t in times.items()},
        "cost_ratio_22k_over_16k": statistics.median(ratios),
        "cost_ratio_range": [min(ratios), max(ratios)],
        "model_invoke_ms": 1e3 * invoke_s,
        "model_ms_per_audio_s": 1e3 * invoke_s * windows_per_s,
    }, indent=2))


if __name__ == "__main__":
    main()
