"""Audio sources behind one interface: a microphone (PyAudio), a file, or the packaged demo scene.

Each captures in its own thread into a bounded BlockBuffer. When the pipeline falls behind, a live
source drops the oldest audio and counts it; a file in --fast mode waits instead, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from importlib import resources
from pathlib import Path

import numpy as np

from .audio import AudioFileError, file_rate, iter_blocks
from .config import SourceConfig
from .errors import SoundsentryError

log = logging.getLogger("soundsentry.capture")
DEMO_SCENE = "demo.flac"
# A stream silent this long after its last block is taken as lost. PulseAudio's ALSA plugin can deliver in
# bursts 2 s apart, and takes up to about 2 s to deliver a new stream's first block, so both leave a margin.
STALL_S = 5.0
START_S = 10.0


class BlockBuffer:
    """A bounded FIFO of audio blocks between a capture thread and the pipeline."""

    def __init__(self, max_samples: int, *, drop_oldest: bool) -> None:
        self.max_samples, self.drop_oldest = max_samples, drop_oldest
        self._blocks: deque[np.ndarray] = deque()
        self._samples = 0
        self._cond = threading.Condition()
        self.closed = False
        self.dropped_blocks = 0
        self.dropped_samples = 0
        self._pending_gap = 0

    def put(self, block: np.ndarray) -> None:
        with self._cond:
            if not self.drop_oldest:
                while self._samples + len(block) > self.max_samples and self._blocks and not self.closed:
                    self._cond.wait(0.1)
            while self.drop_oldest and self._blocks and self._samples + len(block) > self.max_samples:
                old = self._blocks.popleft()
                self._samples -= len(old)
                self.dropped_blocks += 1
                self.dropped_samples += len(old)
                self._pending_gap += len(old)
            self._blocks.append(block)
            self._samples += len(block)
            self._cond.notify_all()

    def add_gap(self, samples: int) -> None:
        """Audio that was never captured (a lost microphone): the consumer hears of it with the next block."""
        with self._cond:
            self._pending_gap += samples

    def get(self, timeout: float) -> tuple[np.ndarray | None, int]:
        """The next block (None on timeout or when closed and empty) and the samples dropped before it."""
        with self._cond:
            if not self._blocks and not self.closed:
                self._cond.wait(timeout)
            if not self._blocks:
                return None, 0
            block = self._blocks.popleft()
            self._samples -= len(block)
            gap, self._pending_gap = self._pending_gap, 0
            self._cond.notify_all()
            return block, gap

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Source:
    """A capture thread feeding `buffer`; `error` holds what ended it early, if anything."""

    description = "source"

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.rate = 0
        self.buffer: BlockBuffer | None = None
        self.error: SoundsentryError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()

    def start(self) -> BlockBuffer:
        self.buffer = BlockBuffer(int(self.config.buffer_s * self.rate), drop_oldest=self.live)
        self._thread = threading.Thread(target=self._run_safely, name=f"capture-{self.description}", daemon=True)
        self._thread.start()
        return self.buffer

    @property
    def live(self) -> bool:
        return True

    def _run_safely(self) -> None:
        try:
            self.capture()
        except SoundsentryError as exc:
            self.error = exc
        finally:
            self.finished.set()
            self.buffer.close()

    def capture(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self.buffer:
            self.buffer.close()
        if self._thread:
            self._thread.join(timeout=5)


class FileSource(Source):
    """A WAV/FLAC/OGG file, paced in real time unless `fast`."""

    def __init__(self, config: SourceConfig, path: Path) -> None:
        super().__init__(config)
        self.path = path
        self.description = f"file:{path}"
        self.rate = file_rate(path)

    @property
    def live(self) -> bool:
        return not self.config.fast

    def capture(self) -> None:
        block_frames = max(1, int(self.config.block_s * self.rate))
        started, sent = time.monotonic(), 0
        for block in iter_blocks(self.path, block_frames):
            if self._stop.is_set():
                return
            if not self.config.fast:
                delay = started + (sent + len(block)) / self.rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            self.buffer.put(block)
            sent += len(block)


@contextlib.contextmanager
def quiet_stderr():
    """Silence what PortAudio's ALSA and JACK probing prints on fd 2 while it initialises."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise SoundsentryError("PyAudio is not installed: pip install pyaudio (Debian: apt install portaudio19-dev)") from None
    with quiet_stderr():
        return pyaudio, pyaudio.PyAudio()


def inputs_of(pa) -> list[dict]:
    devices = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    return [{"index": d["index"], "name": d["name"], "channels": int(d["maxInputChannels"]),
             "default_rate": int(d["defaultSampleRate"])} for d in devices if d["maxInputChannels"] > 0]


def default_input_index(pa) -> int | None:
    try:
        return pa.get_default_input_device_info()["index"]
    except OSError:
        return None


def list_inputs() -> list[dict]:
    """Input devices as PyAudio numbers them: index, name, channels, default rate."""
    _, pa = open_pyaudio()
    try:
        return inputs_of(pa)
    finally:
        pa.terminate()


def find_input(spec: str, inputs: list[dict], default_index: int | None) -> dict:
    """`mic` (the default input), `mic:N` (an index) or `mic:NAME` (a substring of the name)."""
    wanted = spec.partition(":")[2]
    if not inputs:
        what = f"no such input device {wanted!r}: " if wanted else ""
        raise SoundsentryError(f"source {spec!r}: {what}no audio input devices found (is a microphone plugged in?)")
    if not wanted:
        return next((d for d in inputs if d["index"] == default_index), inputs[0])
    if wanted.isdigit():
        match = [d for d in inputs if d["index"] == int(wanted)]
    else:
        match = [d for d in inputs if wanted.lower() in d["name"].lower()]
    if not match:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in inputs)
        raise SoundsentryError(f"source {spec!r}: no such input device (inputs: {names})")
    return match[0]


class MicSource(Source):
    """A PyAudio input; a microphone that goes away is reported and reopened with backoff."""

    def __init__(self, config: SourceConfig) -> None:
        super().__init__(config)
        self._pyaudio, pa = open_pyaudio()  # PortAudio's start-up is slow: this instance also opens the mic first
        try:
            self.device = find_input(config.name, inputs_of(pa), default_input_index(pa))
        except SoundsentryError:
            pa.terminate()
            raise
        self._first_pa = pa
        self.description = f"mic:{self.device['name']}"
        self.rate = config.rate or self.device["default_rate"]
        self.reconnects = 0
        self._last_audio = 0.0

    def _callback(self, data, frames, time_info, status):
        block = np.frombuffer(data, dtype=np.float32)
        if self._channels > 1:
            block = block.reshape(-1, self._channels).mean(axis=1)
        self._last_audio = time.monotonic()
        self.buffer.put(block.astype(np.float32))
        return None, self._pyaudio.paContinue

    def _open(self):
        pa, self._first_pa = self._first_pa, None
        if pa is None:  # a fresh PortAudio, so that a microphone plugged in again is seen
            self._pyaudio, pa = open_pyaudio()
        inputs = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
        match = [d for d in inputs if d["name"] == self.device["name"] and d["maxInputChannels"] > 0]
        if not match:
            pa.terminate()
            raise OSError(f"input {self.device['name']!r} is not present")
        device = match[0]
        last_error = None
        for channels in dict.fromkeys((1, int(device["maxInputChannels"]))):
            try:
                self._channels = channels
                stream = pa.open(format=self._pyaudio.paFloat32, channels=channels, rate=self.rate, input=True,
                                 input_device_index=device["index"], start=True,
                                 frames_per_buffer=max(1, int(self.config.block_s * self.rate)),
                                 stream_callback=self._callback)
                return pa, stream
            except (OSError, ValueError) as exc:
                last_error = exc
        pa.terminate()
        raise OSError(f"cannot open {self.device['name']!r} at {self.rate} Hz: {last_error}")

    def capture(self) -> None:
        delay = 0.5
        first = True
        lost_at = time.monotonic()
        while not self._stop.is_set():
            try:
                pa, stream = self._open()
            except OSError as exc:
                if first:
                    raise SoundsentryError(f"source {self.config.name!r}: {exc}") from None
                log.warning("microphone unavailable (%s); retrying in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            started = time.monotonic()  # its first block is at least block_s away, so the gap goes in before it
            if not first:
                self.reconnects += 1
                self.buffer.add_gap(int((started - lost_at) * self.rate))
                log.info("microphone %s is back", self.device["name"])
            first, delay = False, 0.5
            log.info("capturing from %s at %d Hz", self.device["name"], self.rate)
            try:
                while not self._stop.wait(0.2):
                    heard = self._last_audio > started
                    silent_for = time.monotonic() - (self._last_audio if heard else started)
                    if not stream.is_active() or silent_for > (STALL_S if heard else START_S):
                        log.warning("microphone %s stopped delivering audio; reopening", self.device["name"])
                        break
            finally:
                with contextlib.suppress(OSError):
                    stream.stop_stream()
                    stream.close()
                pa.terminate()
                lost_at = max(self._last_audio, started)


def demo_scene_path() -> Path:
    path = Path(str(resources.files("soundsentry.device.assets") / DEMO_SCENE))
    if not path.is_file():
        raise SoundsentryError("this build ships no demo scene")
    return path


def make_source(config: SourceConfig) -> Source:
    if config.name == "demo":
        return FileSource(config, demo_scene_path())
    if config.name.startswith("file:"):
        path = Path(config.name[5:])
        try:
            return FileSource(config, path)
        except AudioFileError as exc:
            raise SoundsentryError(f"source: {exc}") from None
    return MicSource(config)
