"""The streaming log-mel front end: audio blocks in, the mel frames they complete out.

Training computes its features with this very code, so training and serving cannot drift apart.
It matches `librosa.feature.melspectrogram(center=False)` followed by `librosa.power_to_db(top_db=None)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import soxr

WINDOWS = ("hann", "hamming")
MEL_SCALES = ("slaney", "htk")
MEL_NORMS = ("slaney", None)


@dataclass(frozen=True, kw_only=True)
class FrontEndParams:
    """Every setting of the front end; the model bundle carries one of these."""

    sample_rate: int = 22050
    """Rate the features are computed at, in Hz; other input rates are resampled to it. 22.05 kHz keeps the
    band up to 11 kHz (glass, insects, water): +1.7 points of CV accuracy over 16 kHz on ESC-50 (BENCHMARKS.md)."""
    n_fft: int = 1024
    """FFT size in samples."""
    win_length: int = 706
    """Analysis window length in samples (at most n_fft; centred in the FFT frame when shorter): 32 ms."""
    hop_length: int = 353
    """Samples between the starts of two frames: 16 ms, 62.5 frames a second."""
    window: str = "hann"
    """Periodic analysis window: 'hann' or 'hamming'."""
    n_mels: int = 64
    """Number of mel bands. For compact on ESC-50, 96 and 128 were level with 64 at 1.6 and 1.8 times the training
    time, and 40 was worse (BENCHMARKS.md)."""
    fmin: float = 50.0
    """Lowest band edge in Hz."""
    fmax: float = 11025.0
    """Highest band edge in Hz (at most sample_rate / 2)."""
    mel_scale: str = "slaney"
    """'slaney' (librosa's default, linear below 1 kHz) or 'htk'."""
    mel_norm: str | None = "slaney"
    """'slaney' (each band has unit area) or None."""
    amin: float = 1e-10
    """Floor applied to mel power before the log: silence maps to 10*log10(amin/ref) dB."""
    ref: float = 1.0
    """Power that maps to 0 dB."""

    def __post_init__(self) -> None:
        checks = [
            (self.sample_rate > 0, "sample_rate must be positive"),
            (self.n_fft > 0, "n_fft must be positive"),
            (0 < self.win_length <= self.n_fft, "win_length must be in 1..n_fft"),
            (self.hop_length > 0, "hop_length must be positive"),
            (self.window in WINDOWS, f"window must be one of {WINDOWS}"),
            (self.n_mels > 0, "n_mels must be positive"),
            (0 <= self.fmin < self.fmax <= self.sample_rate / 2, "need 0 <= fmin < fmax <= sample_rate/2"),
            (self.mel_scale in MEL_SCALES, f"mel_scale must be one of {MEL_SCALES}"),
            (self.mel_norm in MEL_NORMS, f"mel_norm must be one of {MEL_NORMS}"),
            (self.amin > 0 and self.ref > 0, "amin and ref must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"front-end parameters: {message}")

    def span(self, frames: int) -> int:
        """Samples that `frames` consecutive frames cover: (frames - 1) hops plus one FFT frame."""
        return (frames - 1) * self.hop_length + self.n_fft

    @property
    def floor_db(self) -> float:
        """The value a frame of digital silence has in every band (to float32 rounding, 1e-5 dB)."""
        return float(10.0 * np.log10(self.amin) - 10.0 * np.log10(self.ref))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FrontEndParams":
        """Build from a mapping, naming the first key this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown front-end parameter {key!r} (known: {', '.join(sorted(known))})")
        return cls(**data)


def hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mel = hz / f_sp
    high = hz >= min_log_hz
    return np.where(high, min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep, mel)


def mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_edges_hz(params: FrontEndParams) -> np.ndarray:
    """The n_mels + 2 edges of the mel bands in Hz, evenly spaced in mel: band i rises from edge i, peaks at
    edge i + 1 (its centre) and falls to edge i + 2."""
    edges_mel = np.linspace(
        hz_to_mel(params.fmin, params.mel_scale), hz_to_mel(params.fmax, params.mel_scale), params.n_mels + 2
    )
    return mel_to_hz(edges_mel, params.mel_scale)


def mel_filterbank(params: FrontEndParams) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), as librosa.filters.mel builds them."""
    fft_freqs = np.fft.rfftfreq(params.n_fft, d=1.0 / params.sample_rate)
    edges = mel_edges_hz(params)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if params.mel_norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def analysis_window(params: FrontEndParams) -> np.ndarray:
    """The periodic window of win_length samples, zero-padded and centred to n_fft."""
    n = np.arange(params.win_length)
    alpha = 0.5 if params.window == "hann" else 0.54
    window = alpha - (1.0 - alpha) * np.cos(2.0 * np.pi * n / params.win_length)
    left = (params.n_fft - params.win_length) // 2
    return np.pad(window, (left, params.n_fft - params.win_length - left))


class Frames(NamedTuple):
    """Frames a push completed: log-mel dB, shape (n, n_mels), and each frame's mean-square power, shape (n,).

    The power stays linear (full scale square wave 1.0, sine 0.5): windows average it before taking dBFS."""

    mel: np.ndarray
    power: np.ndarray


class Resampler:
    """Streaming resampler (soxr, HQ) with state across blocks; a pass-through when the rates agree."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = None if self.in_rate == self.out_rate else soxr.ResampleStream(in_rate, out_rate, 1, "float32", "HQ")

    def push(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)


class StreamingFrontEnd:
    """Turns audio blocks of any length into the log-mel frames they complete; no frame is made twice."""

    rfft = staticmethod(np.fft.rfft)
    """The real FFT of each row; benchmarks/fft_library.py times another library's in its place."""

    def __init__(self, params: FrontEndParams, input_rate: int | None = None) -> None:
        self.params = params
        self.input_rate = int(input_rate or params.sample_rate)
        self.resampler = Resampler(self.input_rate, params.sample_rate)
        self._filters_t = np.ascontiguousarray(mel_filterbank(params).T / np.float32(params.ref))  # power / ref
        self._floor = np.float32(params.amin / params.ref)
        self._window = analysis_window(params)
        self._buffer = np.zeros(0, dtype=np.float64)
        self.frames_made = 0

    def push(self, block: np.ndarray, *, last: bool = False) -> Frames:
        """Feed mono float samples in [-1, 1] at input_rate; `last` flushes the resampler at end of stream."""
        samples = self.resampler.push(block, last=last)
        buffer = np.concatenate([self._buffer, samples], dtype=np.float64)
        p = self.params
        n = 0 if len(buffer) < p.n_fft else 1 + (len(buffer) - p.n_fft) // p.hop_length
        if n == 0:
            self._buffer = buffer
            return Frames(np.zeros((0, p.n_mels), np.float32), np.zeros(0))
        step = buffer.itemsize  # a view of the n overlapping frames, built directly: the stride helpers cost more
        frames = np.ndarray((n, p.n_fft), buffer.dtype, buffer, 0, (p.hop_length * step, step))
        spectrum = self.rfft(frames * self._window, axis=1).view(np.float64)  # float64: faint bands keep precision
        np.square(spectrum, out=spectrum)  # re², im² interleaved; their sum is rounded to float32 once
        power = np.add(spectrum[:, 0::2], spectrum[:, 1::2], out=np.empty((n, p.n_fft // 2 + 1), np.float32))
        mel = power @ self._filters_t
        log_mel = np.log(np.maximum(mel, self._floor, out=mel), out=mel)  # natural log: numpy's log10 is not SIMD
        log_mel *= np.float32(10.0 / np.log(10.0))
        frame_power = (frames[:, None, :] @ frames[:, :, None]).ravel() / p.n_fft  # einsum costs 2x more here
        self._buffer = buffer[n * p.hop_length :]
        self.frames_made += n
        return Frames(log_mel, frame_power)


def log_mel(audio: np.ndarray, params: FrontEndParams, rate: int | None = None) -> Frames:
    """All frames of a whole clip, through the same streaming code the device runs."""
    return StreamingFrontEnd(params, rate).push(audio, last=True)
