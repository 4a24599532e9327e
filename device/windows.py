"""Model windows over a stream of frames, and the one rule that turns window scores into clip scores.

The rule, shared by `classify`, `evaluate` and training's window selection: a window is *active* when its
level is within ACTIVE_MARGIN_DB of the loudest window of the clip; the clip's scores are the mean of the
active windows' scores. Digital silence and quiet lead-ins then never dilute or decide a clip.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .frontend import Frames, FrontEndParams, StreamingFrontEnd

ACTIVE_MARGIN_DB = 20.0


class Window(NamedTuple):
    """One model input: log-mel (window_frames, n_mels), read-only; its mean level and peak frame level in dBFS."""

    mel: np.ndarray
    level: float
    peak: float
    end_frame: int


def power_dbfs(power: float) -> float:
    """A mean-square power in dBFS (full-scale square wave 0, sine -3), floored at -120 dBFS."""
    return 10.0 * math.log10(max(power, 1e-12))


class Windower:
    """Collects frames and emits a window of `window_frames` every `hop_frames` frames."""

    def __init__(self, window_frames: int, hop_frames: int, n_mels: int) -> None:
        self.window_frames = window_frames
        self.hop_frames = hop_frames
        self._mel = np.zeros((0, n_mels), np.float32)
        self._power = np.zeros(0, np.float64)
        self._start = 0  # absolute index of the first buffered frame
        self._next_end = window_frames

    def push(self, frames: Frames) -> list[Window]:
        self._mel = np.concatenate([self._mel, frames.mel])
        self._mel.flags.writeable = False  # windows are views of it, so no one may change it
        self._power = np.concatenate([self._power, frames.power])
        windows = []
        while self._next_end <= self._start + len(self._mel):
            stop = self._next_end - self._start
            begin = stop - self.window_frames
            power = self._power[begin:stop]
            windows.append(Window(self._mel[begin:stop], power_dbfs(float(power.sum()) / self.window_frames),
                                  power_dbfs(float(power.max())), self._next_end))
            self._next_end += self.hop_frames
        drop = max(0, self._next_end - self.window_frames - self._start)
        if drop:
            self._mel, self._power = self._mel[drop:], self._power[drop:]
            self._start += drop
        return windows


def clip_windows(frames: Frames, window_frames: int, hop_frames: int, floor_db: float) -> list[Window]:
    """The windows the device would see for a whole clip; a clip shorter than a window is padded with silence."""
    n_mels = frames.mel.shape[1]
    if len(frames.mel) < window_frames:
        pad = window_frames - len(frames.mel)
        frames = Frames(
            np.concatenate([frames.mel, np.full((pad, n_mels), floor_db, np.float32)]),
            np.concatenate([frames.power, np.zeros(pad)]),
        )
    return Windower(window_frames, hop_frames, n_mels).push(frames)


def clip_features(audio: np.ndarray, rate: int, params: FrontEndParams, window_frames: int, hop_frames: int) -> list[Window]:
    """Audio of a whole clip to its model windows, through the streaming front end."""
    frames = StreamingFrontEnd(params, rate).push(audio, last=True)
    return clip_windows(frames, window_frames, hop_frames, params.floor_db)


def active_mask(levels: np.ndarray, margin_db: float = ACTIVE_MARGIN_DB) -> np.ndarray:
    """Windows within margin_db of the loudest one: where the sound is."""
    levels = np.asarray(levels, dtype=np.float64)
    return levels >= levels.max() - margin_db


def combine_scores(scores: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Clip scores: the mean of the active windows' scores (see the module docstring)."""
    scores = np.asarray(scores, dtype=np.float32)
    return scores[active_mask(levels)].mean(axis=0)
