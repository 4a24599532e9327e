"""Augmentation properties: shapes, labels kept, mixup weights, durations, levels."""

from __future__ import annotations

import numpy as np
import pytest

import synth
from conftest import fast_config
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
