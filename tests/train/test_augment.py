"""Augmentation properties: shapes, labels kept, mixup weights, durations, levels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import synth
from conftest import fast_config
from soundsentry.device.frontend import FrontEndParams, mel_edges_hz
from soundsentry.train import augment
from soundsentry.train.datasets import load_dataset
from soundsentry.train.features import extract, sample_epoch

RNG = np.random.default_rng(0)


def test_noise_hits_the_requested_snr():
    y = synth.tone(440, 2.0)
    noisy = augment.add_noise(y, 10.0, np.random.default_rng(1))
    snr = 10 * np.log10(np.mean(y**2) / np.mean((noisy - y) ** 2))
    assert noisy.shape == y.shape and abs(snr - 10.0) < 0.2


def test_shift_zeroes_what_wrapped():
    y = np.arange(1, 11, dtype=np.float32)
    assert augment.time_shift(y, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert augment.time_shift(y, -2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]


def test_gain_scales_and_clips():
    y = np.full(10, 0.5, np.float32)
    assert np.allclose(augment.apply_gain(y, -6.0206), 0.25, atol=1e-4)
    assert augment.apply_gain(y, 12.0).max() == 1.0


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_stretch_changes_duration_as_asked(rate):
    y = synth.tone(440, 2.0)
    assert abs(len(augment.time_stretch(y, rate)) - len(y) / rate) <= 512


def test_pitch_shift_keeps_duration_and_moves_pitch():
    y = synth.tone(440, 1.0)
    shifted = augment.pitch_shift(y, 16000, 12.0)
    assert len(shifted) == len(y)
    peak = np.argmax(np.abs(np.fft.rfft(shifted))) * 16000 / len(y)
    assert abs(peak - 880) < 10


def test_mixup_weights_sum_to_one_and_mix_labels():
    x = RNG.normal(size=(16, 4, 4, 1)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[RNG.integers(0, 4, 16)]
    mx, my, lam = augment.mixup(x, y, 0.4, np.random.default_rng(2))
    assert mx.shape == x.shape and my.shape == y.shape
    assert np.allclose(my.sum(axis=1), 1.0)
    assert ((lam >= 0) & (lam <= 1)).all()


def test_spec_augment_masks_with_the_mean():
    w = RNG.normal(size=(3, 64, 64)).astype(np.float32)
    out = augment.spec_augment(w, np.random.default_rng(3), time_masks=2, time_width=8, freq_masks=2, freq_width=8)
    assert out.shape == w.shape and (out != w).any() and np.array_equal(w, w.copy())


def test_equalize_is_one_bounded_curve_per_window_and_keeps_silence():
    w = RNG.normal(-40, 5, size=(4, 64, 32)).astype(np.float32)
    w[0, :, :4] = -100.0  # digital silence in a few bands
    out = augment.equalize(w, np.random.default_rng(7), max_db=6.0, knots=5, floor_db=-100.0)
    gain = out[1:] - w[1:]
    assert out.shape == w.shape and out.dtype == np.float32
    assert np.allclose(gain, gain[:, :1, :], atol=1e-4)  # the same curve in every frame of a window
    assert np.abs(gain).max() <= 6.0 + 1e-4 and np.abs(gain).max() > 1.0
    assert not np.allclose(gain[0, 0], gain[1, 0])  # a curve of its own per window
    assert out[0, :, :4].min() >= -100.0


def test_rolloff_cuts_the_edges_and_spares_the_middle():
    params = FrontEndParams()
    centres = mel_edges_hz(params)[1:-1]
    assert np.allclose(centres[[0, -1]], [100, 10466], atol=1)  # 64 slaney bands from 50 Hz to 11.025 kHz
    w = np.full((2, 8, params.n_mels), -30.0, np.float32)
    out = augment.rolloff(w, np.random.default_rng(8), params=params, low_hz=(300, 300), high_hz=(4000, 4000))
    gain = out[0, 0] - w[0, 0]
    assert np.allclose(out[0], out[1]) and np.allclose(out[0], out[0, :1])  # the corners given, every frame
    assert np.isclose(np.interp(300, centres, gain), -3.0, atol=0.3)  # 3 dB down at each corner
    assert np.isclose(np.interp(4000, centres, gain), -3.0, atol=0.3)
    assert gain[0] < -15 and gain[-1] < -10 and abs(gain[np.argmin(np.abs(centres - 1100))]) < 0.2


def test_mix_background_at_snr():
    y = synth.tone(440, 1.0)
    room = synth.noise_burst(3.0, seed=4)
    mixed = augment.mix_background(y, room, 6.0, np.random.default_rng(5))
    assert abs(10 * np.log10(np.mean(y**2) / np.mean((mixed - y) ** 2)) - 6.0) < 0.1


def test_coloured_noise_level():
    for exponent in (0.0, 1.0, 2.0):
        y = augment.coloured_noise(16000, exponent, -40.0, np.random.default_rng(6))
        assert abs(10 * np.log10(np.mean(y.astype(np.float64) ** 2)) + 40.0) < 0.01


def test_epoch_keeps_labels_and_shapes(tone_data):
    config = fast_config()
    features = extract(load_dataset(tone_data), config, progress=False)
    indices = np.arange(len(features.clips))
    x, y = sample_epoch(features, indices, config, np.random.default_rng(7))
    k = config.fit.windows_per_clip
    assert x.shape == (len(indices) * k, 64, 64)
    assert y.tolist() == np.repeat(features.y, k).tolist()


def test_epoch_applies_the_microphone_augmentations(tone_data):
    config = fast_config()
    features = extract(load_dataset(tone_data), config, progress=False)
    indices = np.arange(len(features.clips))
    off = replace(config.augment, equalize_db=0.0, rolloff=False)
    plain, _ = sample_epoch(features, indices, replace(config, augment=off), np.random.default_rng(7))
    mic = replace(config.augment, equalize_db=6.0, rolloff=True, rolloff_low_hz=(400.0, 400.0))
    coloured, _ = sample_epoch(features, indices, replace(config, augment=mic), np.random.default_rng(7))
    change = np.median(coloured - plain, axis=1)  # the same waves and masks: only the per-window curves differ
    assert np.median(change[:, 0]) < -10  # the lowest band (96 Hz) lies well under a 400 Hz corner
    assert change[:, 32].std() > 1.0  # and each window has an equalizer of its own
