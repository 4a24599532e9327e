"""Would another FFT library bring the front end to 10x? `soundsentry bench`'s front-end line, run with numpy's
FFT and with pyFFTW's planned FFTW in its place, in alternating rounds on the same audio.

    pip install pyfftw   # its wheel carries FFTW, which is GPL-2.0-or-later: measured here, not a dependency
    python benchmarks/fft_library.py [--model BUNDLE] [--rounds 5]

Each round runs `bench_frontend` once per library: seven alternating pairs of the streaming front end and
librosa recomputing each window, the speedup their median ratio. Also times the FFT alone on one push's
frames, and checks that the two libraries give the same log-mel. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit

import numpy as np
import pyfftw

from soundsentry.convert.bench import bench_frontend, test_audio
from soundsentry.device.classifier import open_model
from soundsentry.device.frontend import StreamingFrontEnd, log_mel


class PlannedFFT:
    """FFTW plans, one per input shape, made on first use; called as numpy's rfft is in the front end."""

    def __init__(self) -> None:
        self.plans: dict[tuple[int, ...], pyfftw.FFTW] = {}

    def __call__(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        plan = self.plans.get(x.shape)
        if plan is None:
            plan = self.plans[x.shape] = pyfftw.builders.rfft(pyfftw.empty_aligned(x.shape, x.dtype), axis=axis,
                                                                 threads=1, planner_effort="FFTW_MEASURE")
        return plan(x)  # the plan's own output array: the front end reads it before the next call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle (default: the shipped one)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    classifier = open_model(args.model, num_threads=1)
    libraries = {"numpy": StreamingFrontEnd.rfft, "fftw": PlannedFFT()}

    p = classifier.bundle.frontend
    audio = test_audio(10.0, p.sample_rate)
    mel = {}
    for name, rfft in libraries.items():
        StreamingFrontEnd.rfft = staticmethod(rfft)
        mel[name] = log_mel(audio, p).mel
    frames = np.random.default_rng(0).standard_normal((classifier.bundle.hop_frames, p.n_fft))
    fft_us = {name: 1e6 * min(timeit.repeat(lambda: rfft(frames, axis=1), number=1000, repeat=7)) / 1000
              for name, rfft in libraries.items()}

    runs: dict[str, list[dict]] = {name: [] for name in libraries}
    for _ in range(args.rounds):
        for name, rfft in libraries.items():
            StreamingFrontEnd.rfft = staticmethod(rfft)
            runs[name].append(bench_frontend(classifier))
    StreamingFrontEnd.rfft = staticmethod(libraries["numpy"])

    def summary(name: str) -> dict:
        return {"speedup_over_librosa": [round(r["speedup"], 2) for r in runs[name]],
                "streaming_ms": [round(1e3 * r["streaming_s"], 1) for r in runs[name]],
                "librosa_ms": [round(1e3 * r["librosa_recompute_s"], 1) for r in runs[name]],
                "fft_alone_us": round(fft_us[name], 1)}

    result = {"model": f"{classifier.bundle.name} {classifier.bundle.version}", "rounds": args.rounds,
              "push_frames": classifier.bundle.hop_frames,
              "max_log_mel_difference_db": float(np.max(np.abs(mel["fftw"] - mel["numpy"]))),
              **{name: summary(name) for name in libraries},
              # each round's speedups are both against librosa in that round, so their ratio outlasts the
              # machine's slow spells better than the ratio of streaming times measured seconds apart
              "fftw_over_numpy": round(statistics.median(
                  f["speedup"] / n["speedup"] for n, f in zip(runs["numpy"], runs["fftw"])), 3)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
