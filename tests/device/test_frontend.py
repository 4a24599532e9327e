"""The streaming front end against librosa, across block sizes, and the streaming resampler."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

import synth
from soundsentry.device.frontend import FrontEndParams, Resampler, StreamingFrontEnd, log_mel

librosa = pytest.importorskip("librosa")
PARAMS = FrontEndParams()
CLIPS = ["4-107117-A-33.wav", "4-117627-A-25.wav", "4-119647-A-48.wav"]


def librosa_db(y: np.ndarray, p: FrontEndParams) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y.astype(np.float64), sr=p.sample_rate, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
        window=p.window, center=False, power=2.0, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax,
        htk=p.mel_scale == "htk", norm=p.mel_norm)
    return librosa.power_to_db(mel, ref=p.ref, amin=p.amin, top_db=None).T


def synthetic_signals():
    return {
        "tone": synth.tone(1000, 2.0),
        "chirp": synth.chirp(100, 7900, 2.0),
        "noise": synth.noise_burst(2.0),
        "silence_then_tone": np.concatenate([np.zeros(8000, np.float32), synth.tone(440, 1.0)]),
    }


@pytest.mark.parametrize("name", CLIPS)
def test_matches_librosa_on_real_clips(esc50_dir, name):
    audio, rate = sf.read(esc50_dir / "audio" / name, dtype="float32")
    y = soxr.resample(audio, rate, PARAMS.sample_rate)
    ours = log_mel(y, PARAMS).mel
    theirs = librosa_db(y, PARAMS)
    assert ours.shape == theirs.shape
    assert np.max(np.abs(ours - theirs)) < 1e-3


@pytest.mark.parametrize("name", list(synthetic_signals()))
@pytest.mark.parametrize("params", [PARAMS, FrontEndParams(n_fft=1024, win_length=640, hop_length=320, n_mels=40,
                                                           fmin=0.0, window="hamming", mel_scale="htk", mel_norm=None)])
def test_matches_librosa_on_synthetic_signals(name, params):
    y = synthetic_signals()[name]
    assert np.max(np.abs(log_mel(y, params).mel - librosa_db(y, params))) < 1e-3


@pytest.mark.parametrize("block", [1, 160, 333, 1000, 16000])
def test_block_size_does_not_change_frames(esc50_dir, block):
    audio, rate = sf.read(esc50_dir / "audio" / CLIPS[0], dtype="float32")
    audio = audio[: rate * 2]
    whole = StreamingFrontEnd(PARAMS, rate).push(audio, last=True)
    front = StreamingFrontEnd(PARAMS, rate)
    parts = [front.push(audio[i : i + block], last=i + block >= len(audio)) for i in range(0, len(audio), block)]
    mel = np.concatenate([p.mel for p in parts])
    assert mel.shape == whole.mel.shape
    assert np.max(np.abs(mel - whole.mel)) < 1e-3
    assert front.frames_made == len(whole.mel)


def test_frames_are_never_recomputed():
    front = StreamingFrontEnd(PARAMS)
    y = synth.tone(500, 1.0)
    made = [len(front.push(y[i : i + 100]).mel) for i in range(0, len(y), 100)]
    assert sum(made) == 1 + (len(y) - PARAMS.n_fft) // PARAMS.hop_length == front.frames_made


def test_silence_sits_at_the_floor_and_levels_are_dbfs():
    frames = log_mel(np.zeros(16000, np.float32), PARAMS)
    assert np.allclose(frames.mel, PARAMS.floor_db, rtol=0, atol=1e-4)  # float32 log: within 1e-5 dB
    loud = log_mel(np.ones(16000, np.float32), PARAMS)
    assert np.allclose(10 * np.log10(loud.power), 0.0, atol=1e-3)  # a full-scale DC signal is 0 dBFS
    sine = log_mel(synth.tone(1000, 1.0, amplitude=1.0), PARAMS)
    assert np.allclose(10 * np.log10(sine.power), -3.01, atol=0.05)
    assert np.all(frames.power == 0.0)


def level_db(y: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(y, dtype=np.float64)))


@pytest.mark.parametrize("rate", [44100, 48000])
def test_resampler_keeps_passband_level_and_rejects_out_of_band(rate):
    t = np.arange(rate * 2) / rate
    inband = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    outband = (0.5 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)  # above the 8 kHz Nyquist of 16 kHz
    edge = 2000  # skip the filter's settling at both ends
    kept = Resampler(rate, 16000).push(inband, last=True)[edge:-edge]
    assert abs(level_db(kept) - level_db(inband)) < 0.1
    rejected = Resampler(rate, 16000).push(outband, last=True)[edge:-edge]
    assert level_db(outband) - level_db(rejected) >= 60


@pytest.mark.parametrize("block", [1, 441, 1000, 4096])
def test_resampler_blockwise_equals_one_shot(block):
    y = synth.noise_burst(1.0, rate=44100, seed=3)
    one_shot = Resampler(44100, 16000).push(y, last=True)
    stream = Resampler(44100, 16000)
    parts = [stream.push(y[i : i + block], last=i + block >= len(y)) for i in range(0, len(y), block)]
    blockwise = np.concatenate(parts)
    assert blockwise.shape == one_shot.shape
    assert np.max(np.abs(blockwise - one_shot)) < 1e-6


def test_params_validate_and_name_unknown_keys():
    with pytest.raises(ValueError, match="win_length"):
        FrontEndParams(win_length=2048)
    with pytest.raises(ValueError, match="unknown front-end parameter 'n_mfcc'"):
        FrontEndParams.from_dict({**PARAMS.to_dict(), "n_mfcc": 13})
    assert FrontEndParams.from_dict(PARAMS.to_dict()) == PARAMS
