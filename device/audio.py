"""Reading audio files: any rate and channel count in, mono float32 out, bad files named in one line."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import SoundsentryError


class AudioFileError(SoundsentryError, ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""


def wav_shortfall(path: Path) -> int:
    """Bytes the WAV header promises in its data chunk but the file lacks (0 when complete or not a WAV)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def to_mono(data: np.ndarray) -> np.ndarray:
    """Mix (frames, channels) down to (frames,) float32."""
    data = np.asarray(data, dtype=np.float32)
    return data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)


def open_audio(path: str | os.PathLike) -> sf.SoundFile:
    """Open an audio file for reading, turning every way it can be unusable into AudioFileError."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path}: empty file")
    try:
        handle = sf.SoundFile(path)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    if handle.frames == 0:
        handle.close()
        raise AudioFileError(f"{path}: no audio samples (empty or truncated)")
    return handle


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The whole file as mono float32 samples and its sample rate; truncated files are errors."""
    path = Path(path)
    with open_audio(path) as handle:
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise AudioFileError(f"{path}: truncated or corrupt audio ({_reason(exc)})") from None
        rate = handle.samplerate
    missing = wav_shortfall(path)
    if missing:
        raise AudioFileError(f"{path}: truncated: the WAV header promises {missing} more bytes of audio")
    return to_mono(data), rate


def iter_blocks(path: str | os.PathLike, block_frames: int) -> Iterator[np.ndarray]:
    """Stream a file as mono float32 blocks; raises AudioFileError after the last good block if cut short."""
    path = Path(path)
    with open_audio(path) as handle:
        try:
            for block in handle.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                yield to_mono(block)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise AudioFileError(f"{path}: truncated or corrupt audio ({_reason(exc)})") from None
    missing = wav_shortfall(path)
    if missing:
        raise AudioFileError(f"{path}: truncated: the WAV header promises {missing} more bytes of audio")


def file_rate(path: str | os.PathLike) -> int:
    with open_audio(path) as handle:
        return handle.samplerate
