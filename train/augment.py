"""Augmentation: on the waveform (noise, shift, gain, background, stretch, pitch) and on features (mixup,
SpecAugment masks, and other microphones' colouring: random equalizers and band limits). Pure functions of
their inputs and a numpy Generator."""

from __future__ import annotations

import numpy as np

from soundsentry.device.frontend import FrontEndParams, mel_edges_hz


def power(y: np.ndarray) -> float:
    return float(np.mean(np.square(y, dtype=np.float64)))


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at `snr_db` below the signal's power (silence stays silent plus a faint floor)."""
    noise_power = max(power(y), 1e-10) / 10.0 ** (snr_db / 10.0)
    return (y + rng.standard_normal(len(y)).astype(np.float32) * np.sqrt(noise_power)).astype(np.float32)


def time_shift(y: np.ndarray, shift: int) -> np.ndarray:
    """Roll by `shift` samples (either sign), zeroing the part that wrapped around."""
    out = np.roll(y, shift)
    if shift > 0:
        out[:shift] = 0.0
    elif shift < 0:
        out[shift:] = 0.0
    return out


def apply_gain(y: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale the volume, clipping to full scale as a real recording would."""
    return np.clip(y * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def mix_background(y: np.ndarray, background: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix in a random stretch of a room recording at `snr_db` below the clip's power."""
    if len(background) < len(y):
        background = np.tile(background, int(np.ceil(len(y) / max(len(background), 1))))
    start = int(rng.integers(0, len(background) - len(y) + 1))
    segment = background[start : start + len(y)]
    scale = np.sqrt(max(power(y), 1e-10) / 10.0 ** (snr_db / 10.0) / max(power(segment), 1e-10))
    return (y + segment * np.float32(scale)).astype(np.float32)


def coloured_noise(n: int, exponent: float, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power falling as 1/f**exponent (0 white, 1 pink, 2 brown), scaled to `level_dbfs`."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    y = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    y *= 10 ** (level_dbfs / 20) / np.sqrt(max(np.mean(y**2), 1e-20))
    return y.astype(np.float32)


def time_stretch(y: np.ndarray, rate: float) -> np.ndarray:
    """Faster (rate > 1, shorter) or slower playback at the same pitch (librosa phase vocoder)."""
    import librosa

    return librosa.effects.time_stretch(y, rate=rate).astype(np.float32)


def pitch_shift(y: np.ndarray, sample_rate: int, steps: float) -> np.ndarray:
    """Shift pitch by `steps` semitones at the same duration (librosa)."""
    import librosa

    return librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=steps).astype(np.float32)


def mixup(x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend each example with a random partner: lam * a + (1 - lam) * b for inputs and one-hot labels.

    Returns the mixed inputs, mixed labels and the weights lam (one per example)."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    partner = rng.permutation(len(x))
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    ly = lam.reshape((-1,) + (1,) * (y.ndim - 1))
    return lx * x + (1 - lx) * x[partner], ly * y + (1 - ly) * y[partner], lam


def spec_augment(windows: np.ndarray, rng: np.random.Generator, *, time_masks: int, time_width: int,
                 freq_masks: int, freq_width: int) -> np.ndarray:
    """SpecAugment-style masks: up to `width` consecutive frames or bands set to the window's mean."""
    out = windows.copy()
    n_frames, n_bands = windows.shape[1:3]
    for w in out:
        fill = w.mean()
        for _ in range(time_masks):
            width = int(rng.integers(0, time_width + 1))
            start = int(rng.integers(0, max(n_frames - width, 0) + 1))
            w[start : start + width, :] = fill
        for _ in range(freq_masks):
            width = int(rng.integers(0, freq_width + 1))
            start = int(rng.integers(0, max(n_bands - width, 0) + 1))
            w[:, start : start + width] = fill
    return out


def equalize(windows: np.ndarray, rng: np.random.Generator, *, max_db: float, knots: int, floor_db: float) -> np.ndarray:
    """A random equalizer per window, as another microphone or room would colour the sound: a gain curve over
    the mel bands, linear between `knots` points spread over them with gains in +-max_db, added to the dB.
    Bands never fall below `floor_db`, so digital silence stays silence."""
    n_bands = windows.shape[2]
    positions = np.linspace(0, n_bands - 1, knots)
    gains = rng.uniform(-max_db, max_db, size=(len(windows), knots))
    curves = np.stack([np.interp(np.arange(n_bands), positions, g) for g in gains]).astype(np.float32)
    return np.maximum(windows + curves[:, None, :], np.float32(floor_db))


def rolloff(windows: np.ndarray, rng: np.random.Generator, *, params: FrontEndParams, low_hz: tuple[float, float],
            high_hz: tuple[float, float]) -> np.ndarray:
    """A random band limit per window, as a small or cheap microphone has: second-order high- and low-pass
    slopes with corners drawn from `low_hz` and `high_hz`, taken in dB at each mel band's centre."""
    centres = mel_edges_hz(params)[1:-1]
    low = rng.uniform(*low_hz, size=(len(windows), 1))
    high = rng.uniform(*high_hz, size=(len(windows), 1))
    db = -10 * np.log10(1 + (low / centres) ** 4) - 10 * np.log10(1 + (centres / high) ** 4)
    return np.maximum(windows + db[:, None, :].astype(np.float32), np.float32(params.floor_db))
