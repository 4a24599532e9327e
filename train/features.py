"""Feature extraction with the device's own front end, cached on disk, and the per-epoch window sampler.

The cache key is a hash of the front-end parameters, the window, the variant settings and the file
list (path, size, mtime): a second run with the same inputs skips decoding, resampling and stretching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from soundsentry.device.audio import read_audio
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.frontend import FrontEndParams, Resampler
from soundsentry.device.windows import active_mask, clip_features

from . import augment
from .config import AugmentConfig, TrainConfig
from .datasets import AUDIO_SUFFIXES, Dataset

log = logging.getLogger("soundsentry.train.features")
CACHE_VERSION = 3
BACKGROUND = "background"
BACKGROUND_SECONDS = 5.0


@dataclass
class ClipFeatures:
    """Everything training needs of one clip: waveforms at the model rate and its clean windows."""

    label: int
    fold: int
    group: str
    waves: list[np.ndarray]
    """The clip resampled to the model rate, then its stretch/pitch variants."""
    windows: np.ndarray
    """Clean model windows, (n, frames, n_mels) float32."""
    levels: np.ndarray
    """Each window's level in dBFS (for the active-window rule)."""


@dataclass
class FeatureSet:
    labels: list[str]
    clips: list[ClipFeatures]
    params: FrontEndParams
    window_frames: int
    hop_frames: int
    skipped: list[str] = field(default_factory=list)
    rooms: list[np.ndarray] = field(default_factory=list)
    """The background_dir recordings at the model rate, mixed into clips during training."""

    @property
    def y(self) -> np.ndarray:
        return np.array([c.label for c in self.clips])

    @property
    def groups(self) -> np.ndarray:
        return np.array([c.group for c in self.clips])

    @property
    def folds(self) -> np.ndarray:
        return np.array([c.fold for c in self.clips])

    def windows_of(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Active clean windows of the given clips, with their labels."""
        xs, ys = [], []
        for i in indices:
            clip = self.clips[i]
            chosen = clip.windows[active_mask(clip.levels)]
            xs.append(chosen)
            ys.append(np.full(len(chosen), clip.label))
        return np.concatenate(xs), np.concatenate(ys)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    return Resampler(rate, target).push(audio, last=True)


def cache_key(dataset: Dataset, config: TrainConfig) -> str:
    a = config.augment
    spec = {
        "version": CACHE_VERSION,
        "frontend": config.frontend.to_dict(),
        "window": [config.window.frames, config.window.hop_frames],
        "variants": [a.variants if (a.stretch or a.pitch) else 0, a.stretch, a.stretch_rates, a.pitch, a.pitch_steps,
                     config.fit.seed],
        "background": [a.background_class, a.background_level_dbfs, a.background_dir],
        "files": [(str(c.path.resolve()), c.label, c.fold, c.group, *_stat(c.path)) for c in dataset.clips],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


def make_variants(wave: np.ndarray, sample_rate: int, a: AugmentConfig, rng: np.random.Generator) -> list[np.ndarray]:
    kinds = [k for k, on in (("stretch", a.stretch), ("pitch", a.pitch)) if on]
    out = []
    for _ in range(a.variants if kinds else 0):
        if kinds[int(rng.integers(len(kinds)))] == "stretch":
            out.append(augment.time_stretch(wave, float(rng.uniform(*a.stretch_rates))))
        else:
            out.append(augment.pitch_shift(wave, sample_rate, float(rng.uniform(*a.pitch_steps))))
    return out


def extract(dataset: Dataset, config: TrainConfig, cache_dir: str | os.PathLike | None = None,
            progress: bool = True) -> FeatureSet:
    """Decode, resample and window every clip (and its variants); reuse the cache when it matches."""
    cache_path = Path(cache_dir) / f"features-{cache_key(dataset, config)}.pkl" if cache_dir else None
    if cache_path and cache_path.is_file():
        log.info("features from cache %s", cache_path)
        with open(cache_path, "rb") as handle:
            features = pickle.load(handle)
        dataset.skipped = list(features.skipped)
        return features
    params, labels = config.frontend, dataset.labels
    index = {label: i for i, label in enumerate(labels)}
    rng = np.random.default_rng(config.fit.seed)
    clips, skipped = [], []
    iterator = dataset.clips
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="features", unit="clip", leave=False)
    for clip in iterator:
        try:
            audio, rate = read_audio(clip.path)
        except SoundsentryError as exc:
            log.warning("skipping unreadable clip: %s", exc)
            skipped.append(str(exc))
            continue
        wave = resample(audio, rate, params.sample_rate)
        windows, levels = clean_windows(wave, params, config.window.frames, config.window.hop_frames)
        clips.append(ClipFeatures(
            label=index[clip.label], fold=clip.fold, group=clip.group,
            waves=[wave, *make_variants(wave, params.sample_rate, config.augment, rng)],
            windows=windows, levels=levels,
        ))
    if not clips:
        raise SoundsentryError(f"{dataset.root}: no readable clips ({len(skipped)} skipped)")
    rooms = load_backgrounds(config.augment.background_dir, params.sample_rate)
    if config.augment.background_class and BACKGROUND not in labels:
        labels = [*labels, BACKGROUND]
        clips += background_clips(clips, len(labels) - 1, config, rooms, rng)
    dataset.skipped = skipped
    features = FeatureSet(labels, clips, params, config.window.frames, config.window.hop_frames, skipped, rooms)
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")  # two runs extracting at once must not share it
        with open(tmp, "wb") as handle:
            pickle.dump(features, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache_path)
    return features


def clean_windows(wave: np.ndarray, params: FrontEndParams, frames: int, hop_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A clip's model windows as the device makes them, (n, frames, n_mels), and each one's level in dBFS."""
    windows = clip_features(wave, params.sample_rate, params, frames, hop_frames)
    return np.stack([w.mel for w in windows]), np.array([w.level for w in windows], np.float32)


def background_clips(clips: list[ClipFeatures], label: int, config: TrainConfig, rooms: list[np.ndarray],
                     rng: np.random.Generator) -> list[ClipFeatures]:
    """As many quiet-room clips as the largest class has: coloured noise at a random low level, and
    stretches of the background_dir recordings when there are any; spread over the data set's folds."""
    params, window = config.frontend, config.window
    per_class = np.bincount([c.label for c in clips])
    folds = sorted({c.fold for c in clips})
    n = int(BACKGROUND_SECONDS * params.sample_rate)
    out = []
    for i in range(int(per_class.max())):
        level = float(rng.uniform(*config.augment.background_level_dbfs))
        wave = augment.coloured_noise(n, float(rng.choice([0.0, 1.0, 2.0])), level, rng)
        if rooms and i % 2:
            room = rooms[i // 2 % len(rooms)]
            start = int(rng.integers(0, max(1, len(room) - n)))
            wave = room[start : start + n].astype(np.float32)
        windows, levels = clean_windows(wave, params, window.frames, window.hop_frames)
        out.append(ClipFeatures(label=label, fold=folds[i % len(folds)], group=f"{BACKGROUND}-{i}", waves=[wave],
                                windows=windows, levels=levels))
    return out


def load_backgrounds(folder: str, sample_rate: int) -> list[np.ndarray]:
    """Every readable recording in the background folder, at the model rate."""
    if not folder:
        return []
    root = Path(folder)
    if not root.is_dir():
        raise SoundsentryError(f"augment.background_dir: {root}: no such folder")
    waves = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        try:
            audio, rate = read_audio(path)
        except SoundsentryError as exc:
            log.warning("skipping background recording: %s", exc)
            continue
        waves.append(resample(audio, rate, sample_rate))
    if not waves:
        raise SoundsentryError(f"augment.background_dir: {root}: no readable audio")
    return waves


def augment_wave(wave: np.ndarray, a: AugmentConfig, rng: np.random.Generator, max_shift: int,
                 rooms: list[np.ndarray]) -> np.ndarray:
    """The waveform augmentations of the config, each applied with probability `a.probability`."""
    def chance() -> bool:
        return rng.random() < a.probability

    if a.shift and chance():
        wave = augment.time_shift(wave, int(rng.integers(-max_shift, max_shift + 1)))
    if rooms and chance():
        wave = augment.mix_background(wave, rooms[int(rng.integers(len(rooms)))],
                                      float(rng.uniform(*a.background_snr_db)), rng)
    if a.noise and chance():
        wave = augment.add_noise(wave, float(rng.uniform(*a.noise_snr_db)), rng)
    if a.gain and chance():
        wave = augment.apply_gain(wave, float(rng.uniform(*a.gain_db)))
    return wave


def sample_epoch(features: FeatureSet, indices, config: TrainConfig,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of augmented training windows: per clip, a random variant, augmented, then
    `windows_per_clip` of its active windows (repeating some when it has fewer), so epochs are equal."""
    params, a = features.params, config.augment
    max_shift = features.window_frames * params.hop_length
    xs, ys = [], []
    for i in indices:
        clip = features.clips[i]
        wave = clip.waves[int(rng.integers(len(clip.waves)))]
        wave = augment_wave(wave, a, rng, max_shift, features.rooms)
        windows = clip_features(wave, params.sample_rate, params, features.window_frames, features.hop_frames)
        active = np.flatnonzero(active_mask(np.array([w.level for w in windows])))
        k = config.fit.windows_per_clip
        take = rng.choice(active, size=k, replace=len(active) < k)
        xs += [windows[j].mel for j in take]
        ys += [clip.label] * len(take)
    x = np.stack(xs)
    if a.time_masks or a.freq_masks:
        x = augment.spec_augment(x, rng, time_masks=a.time_masks, time_width=a.time_mask_frames,
                                 freq_masks=a.freq_masks, freq_width=a.freq_mask_bands)
    if a.equalize_db:
        x = augment.equalize(x, rng, max_db=a.equalize_db, knots=a.equalize_knots, floor_db=params.floor_db)
    if a.rolloff:
        x = augment.rolloff(x, rng, params=params, low_hz=a.rolloff_low_hz, high_hz=a.rolloff_high_hz)
    return x, np.array(ys)
