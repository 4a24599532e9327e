"""Front end -> windows -> (gate) -> classifier -> event detector, with no I/O: blocks in, results out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classifier import Classifier
from .events import EventDetector
from .frontend import StreamingFrontEnd
from .windows import Windower


@dataclass(frozen=True)
class Scored:
    """One window: where it sits in the stream, its levels, and its scores (None when gated)."""

    end_s: float
    centre_s: float
    level: float
    peak: float
    scores: np.ndarray | None


class Pipeline:
    """`scored, messages = pipeline.push(block)` for mono float blocks at `input_rate`."""

    def __init__(self, classifier: Classifier, detector: EventDetector, input_rate: int,
                 gate_dbfs: float | None = None, *, start_s: float = 0.0) -> None:
        self.classifier, self.detector, self.input_rate, self.gate_dbfs = classifier, detector, input_rate, gate_dbfs
        b = classifier.bundle
        self._frame_s = b.frontend.hop_length / b.frontend.sample_rate
        self._first_frame_s = b.frontend.n_fft / b.frontend.sample_rate
        self._half_window_s = b.window_s / 2
        self._origin_s = start_s
        self.samples_in = round(start_s * input_rate)
        self.windows = 0
        self.gated = 0
        self._reset()

    def _reset(self) -> None:
        b = self.classifier.bundle
        self.frontend = StreamingFrontEnd(b.frontend, self.input_rate)
        self.windower = Windower(b.window_frames, b.hop_frames, b.frontend.n_mels)

    @property
    def position_s(self) -> float:
        return self.samples_in / self.input_rate

    def push(self, block: np.ndarray, *, last: bool = False) -> tuple[list[Scored], list[dict]]:
        self.samples_in += len(block)
        scored, messages = [], []
        for window in self.windower.push(self.frontend.push(block, last=last)):
            end_s = self._origin_s + (window.end_frame - 1) * self._frame_s + self._first_frame_s
            centre_s = end_s - self._half_window_s
            self.windows += 1
            if self.gate_dbfs is not None and window.peak < self.gate_dbfs:
                self.gated += 1
                scores = None
                detector_scores = np.zeros(len(self.classifier.labels), np.float32)
            else:
                scores = detector_scores = self.classifier(window.mel)
            scored.append(Scored(end_s, centre_s, window.level, window.peak, scores))
            messages += self.detector.update(centre_s, detector_scores, window.peak)
        return scored, messages

    def skip(self, samples: int) -> list[dict]:
        """Audio was dropped: end open events, restart the front end after the gap."""
        messages = self.detector.flush(self.position_s)
        self.samples_in += samples
        self._origin_s = self.position_s
        self._reset()
        return messages

    def finish(self) -> tuple[list[Scored], list[dict]]:
        """End of stream: flush the resampler, then close every open event."""
        scored, messages = self.push(np.zeros(0, np.float32), last=True)
        return scored, messages + self.detector.flush(self.position_s)
