"""`soundsentry bench`: speed and memory of the device path, each beside a reference measured in the same run.

librosa and TensorFlow are optional here (a Pi has neither): the lines that need them say so.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from soundsentry.device.classifier import Classifier, open_model
from soundsentry.device.events import EventDetector, EventsConfig, StreamClock
from soundsentry.device.frontend import StreamingFrontEnd
from soundsentry.device.pipeline import Pipeline
from soundsentry.device.windows import Windower

REPEATS = 5


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_audio(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Room noise with a tone burst every few seconds, so windows are neither silent nor constant."""
    rng = np.random.default_rng(seed)
    y = 0.01 * rng.standard_normal(int(seconds * rate))
    t = np.arange(int(0.5 * rate)) / rate
    for start in range(0, len(y) - len(t), 3 * rate):
        y[start : start + len(t)] += 0.2 * np.sin(2 * np.pi * (300 + start % 2000) * t)
    return y.astype(np.float32)


def bench_frontend(classifier: Classifier, seconds: float = 60.0, pairs: int = 7) -> dict:
    """Streaming against librosa recomputing each window, timed in alternating pairs.

    Each pair runs the two back to back, so a slow spell of a shared machine hits both; the speed-up is the
    median of the pairs' ratios, and its range is reported beside it."""
    b = classifier.bundle
    p = b.frontend
    audio = test_audio(seconds, p.sample_rate)
    hop = b.hop_frames * p.hop_length
    span = p.span(b.window_frames)

    def streaming():
        front, windower = StreamingFrontEnd(p), Windower(b.window_frames, b.hop_frames, p.n_mels)
        for i in range(0, len(audio), hop):
            windower.push(front.push(audio[i : i + hop]))

    result = {"audio_s": seconds, "windows": (len(audio) - span) // hop + 1}
    try:
        import librosa
    except ImportError:
        result["streaming_s"] = median_time(streaming)
        result["librosa"] = "not installed: no reference measured"
        return result

    def recompute():
        for start in range(0, len(audio) - span + 1, hop):
            mel = librosa.feature.melspectrogram(
                y=audio[start : start + span], sr=p.sample_rate, n_fft=p.n_fft, hop_length=p.hop_length,
                win_length=p.win_length, window=p.window, center=False, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax,
                htk=p.mel_scale == "htk", norm=p.mel_norm)
            librosa.power_to_db(mel, ref=p.ref, amin=p.amin, top_db=None)

    streaming(), recompute()  # warm both: first calls pay for imports and allocator growth
    times = [(median_time(streaming, 1), median_time(recompute, 1)) for _ in range(pairs)]
    ratios = [ref / ours for ours, ref in times]
    result.update(streaming_s=statistics.median(t[0] for t in times),
                  librosa_recompute_s=statistics.median(t[1] for t in times),
                  speedup=statistics.median(ratios), speedup_range=[min(ratios), max(ratios)], pairs=pairs)
    return result


def bench_invoke(classifier: Classifier, n: int = 300) -> dict:
    b = classifier.bundle
    window = np.random.default_rng(1).normal(-40, 15, (b.window_frames, b.frontend.n_mels)).astype(np.float32)
    for _ in range(20):
        classifier(window)
    per_window = median_time(lambda: [classifier(window) for _ in range(n)]) / n
    result = {b.input.dtype: per_window * 1e3}
    float_model = float_tflite(b)
    if isinstance(float_model, str):
        result["float32"] = float_model
    else:
        reference = Classifier(float_model)
        per_float = median_time(lambda: [reference(window) for _ in range(n)]) / n
        result["float32"] = per_float * 1e3
        result["float32_over_" + b.input.dtype] = per_float / per_window
    return result


def float_tflite(bundle):
    """A float32 conversion of the bundle's Keras source when provenance names one that exists."""
    source = bundle.provenance.get("source_model")
    if not source or not Path(source).is_file():
        return "no float model: the bundle's provenance names no Keras model on this machine"
    if bundle.input.dtype == "float32":
        return "the bundle is float32 already"
    try:
        import keras  # noqa: F401
    except ImportError:
        return "no float model: TensorFlow is not installed"
    from soundsentry.train.evaluate import load_trained

    from .tflite import make_bundle, to_tflite

    model, _ = load_trained(Path(source))
    window = np.zeros((bundle.window_frames, bundle.frontend.n_mels), np.float32)
    return make_bundle(to_tflite(model, window[None], "float32"), name=bundle.name, version=bundle.version,
                               labels=list(bundle.labels), frontend=bundle.frontend,
                               window_frames=bundle.window_frames, hop_frames=bundle.hop_frames, provenance={},
                               selftest_window=window)


def bench_pipeline(classifier: Classifier, seconds: float = 600.0) -> dict:
    rate = 48000
    audio = test_audio(seconds, rate, seed=2)
    block = int(0.064 * rate)

    def run():
        detector = EventDetector(classifier.labels, EventsConfig(), device_id="bench", model={},
                                 clock=StreamClock(0.0), background=classifier.bundle.background_labels)
        pipeline = Pipeline(classifier, detector, rate)
        for i in range(0, len(audio), block):
            pipeline.push(audio[i : i + block])
        pipeline.finish()

    elapsed = median_time(run, 3)
    return {"audio_s": seconds, "input_rate": rate, "elapsed_s": elapsed, "real_time_factor": elapsed / seconds}


# VmHWM, not ru_maxrss: Linux carries the parent's high-water mark (this benchmark's, model loaded) over
# fork and exec into ru_maxrss, which once made `import numpy` look like 48.7 MB.
RSS_PROBE = """
import resource, sys
{setup}
try:
    print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
PIPELINE_SETUP = """
import numpy as np
from soundsentry.device.classifier import open_model
from soundsentry.device.events import EventDetector, EventsConfig, StreamClock
from soundsentry.device.pipeline import Pipeline
c = open_model(sys.argv[1] or None)
d = EventDetector(c.labels, EventsConfig(), device_id='b', model={}, clock=StreamClock(0.0),
                  background=c.bundle.background_labels)
p = Pipeline(c, d, 48000)
y = (0.01 * np.random.default_rng(0).standard_normal(48000 * 30)).astype(np.float32)
for i in range(0, len(y), 3072):
    p.push(y[i:i + 3072])
"""


def peak_rss_mb(setup: str, model: str | None) -> float:
    out = subprocess.run([sys.executable, "-c", RSS_PROBE.format(setup=setup), model or ""], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    return int(out.strip().splitlines()[-1]) / 1024.0


def bench(model: str | os.PathLike | None = None) -> dict:
    classifier = open_model(model, num_threads=1)
    b = classifier.bundle
    rss_pipeline = peak_rss_mb(PIPELINE_SETUP, str(model) if model else None)
    rss_numpy = peak_rss_mb("import numpy", None)
    return {
        "model": {"name": b.name, "version": b.version, "sha256": b.sha256, "size_bytes": b.size_bytes,
                  "input_dtype": b.input.dtype, "window_s": b.window_s, "hop_s": b.hop_s},
        "machine": {"python": platform.python_version(), "machine": platform.machine(),
                    "cpus": os.cpu_count(), "threads": 1},
        "frontend": bench_frontend(classifier),
        "invoke_ms": bench_invoke(classifier),
        "pipeline": bench_pipeline(classifier),
        "rss_mb": {"pipeline_process": rss_pipeline, "python_numpy_reference": rss_numpy,
                   "ratio": rss_pipeline / rss_numpy},
        "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def human(result: dict) -> str:
    f, i, p, r = result["frontend"], result["invoke_ms"], result["pipeline"], result["rss_mb"]
    lines = [f"model {result['model']['name']} {result['model']['version']} ({result['model']['size_bytes']} bytes, "
             f"{result['model']['input_dtype']})"]
    if "speedup" in f:
        lines.append(f"front end, {f['audio_s']:.0f} s of audio, {f['windows']} windows: streaming {f['streaming_s']*1e3:.1f} ms, "
                     f"librosa recomputing each window {f['librosa_recompute_s']*1e3:.1f} ms: {f['speedup']:.1f}x faster "
                     f"(median of {f['pairs']} paired runs, range {f['speedup_range'][0]:.1f}-{f['speedup_range'][1]:.1f}x)")
    else:
        lines.append(f"front end: streaming {f['streaming_s']*1e3:.1f} ms; librosa {f['librosa']}")
    for key, value in i.items():
        lines.append(f"invoke {key}: {value:.4f}" + (" ms/window" if "over" not in key else "x") if isinstance(value, float)
                     else f"invoke {key}: {value}")
    lines.append(f"pipeline over {p['audio_s']:.0f} s at {p['input_rate']} Hz: {p['elapsed_s']:.2f} s, "
                 f"real-time factor {p['real_time_factor']:.5f}")
    lines.append(f"peak RSS: pipeline process {r['pipeline_process']:.1f} MB, python+numpy {r['python_numpy_reference']:.1f} MB "
                 f"({r['ratio']:.2f}x)")
    return "\n".join(lines)

