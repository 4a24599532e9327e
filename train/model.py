"""Keras models on log-mel windows: the compact default and the `seed-multiscale` comparison preset.

Input is raw log-mel dB, shape (frames, n_mels, 1); the first layer is a Normalization adapted on the
training windows, so scaling lives in the model and the device feeds the front end's output as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from soundsentry.device.settings import option

BN_MOMENTUM = 0.9  # Keras' 0.99 leaves the moving statistics unsettled after the few hundred steps small data sets give
PRESETS = ("compact", "seed-multiscale", "baseline-mfcc-logreg")


@dataclass(frozen=True, kw_only=True)
class CompactSpec:
    """Width and depth of the compact model (the `[model]` table of the training config): a stem conv,
    depthwise-separable blocks, and a branch of per-band time statistics beside them."""

    stem: int = option(16, min=1, max=512, help="channels of the stem convolution (32 was level with 16 in CV "
                       "accuracy, one seed: BENCHMARKS.md)")
    stem_strides: tuple[int, ...] = option((2, 1), min=1, max=4, help="stride of the stem along time and bands; "
                                           "(2, 1) keeps every mel band through the stem: against (2, 2), level "
                                           "on clean clips, better through filtered microphones and on held-out "
                                           "sounds in the event scene, at 1.45-2.7 times the invoke time "
                                           "(BENCHMARKS.md, sessions 30 and 31)")
    widths: tuple[int, ...] = option((32, 32, 64, 64, 96, 96), min=1, max=1024,
                                     help="channels of each depthwise-separable block (40, 40, 80, 80, 112, 112 "
                                          "was -0.9 points of CV accuracy over two seeds, and a seventh block of "
                                          "96 +0.2 over 23 folds: BENCHMARKS.md)")
    strides: tuple[int, ...] = option((2, 1, 2, 1, 2, 1), min=1, max=4, help="stride of each block")
    dropout: float = option(0.3, min=0.0, max=0.9, help="dropout before the classifier (0.1 was 3.1 points of "
                            "CV accuracy under 0.3: BENCHMARKS.md)")
    stats: bool = option(False, help="add per-band time statistics of the log-mel and its DCT (the MFCC "
                                     "baseline's features, on one window) to the pooled convolution features; "
                                     "better in float, but its int8 conversion agrees on 96.6 % only (BENCHMARKS.md)")

    def __post_init__(self) -> None:
        if len(self.stem_strides) != 2:
            raise ValueError(f"model.stem_strides needs 2 values (time, bands), not {len(self.stem_strides)}")
        if len(self.widths) != len(self.strides):
            raise ValueError(f"model.widths has {len(self.widths)} blocks but model.strides {len(self.strides)}")


def conv_bn_relu(x, filters: int, kernel, strides=1, name: str = ""):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}bn")(x)
    return layers.ReLU(name=f"{name}relu")(x)


def separable_block(x, filters: int, stride: int, name: str):
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}dw_bn")(x)
    x = layers.ReLU(name=f"{name}dw_relu")(x)
    return conv_bn_relu(x, filters, 1, name=f"{name}pw_")


def normalized_input(input_shape: tuple[int, int], windows: np.ndarray | None):
    """The model input and a per-mel-band Normalization adapted on the training windows."""
    inputs = keras.Input(shape=(*input_shape, 1), name="logmel")
    norm = layers.Normalization(axis=2, name="band_norm")
    if windows is not None:
        norm.adapt(windows[..., None].astype(np.float32))
    return inputs, norm(inputs)


STATISTICS = ("mean", "deviation", "max", "min", "change")


@keras.saving.register_keras_serializable(package="soundsentry")
class TimeStat(layers.Layer):
    """One statistic per band over the time axis of (batch, time, bands): mean, mean absolute deviation, max,
    min or mean absolute frame-to-frame change. Plain reductions, so it runs in full int8."""

    def __init__(self, statistic: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if statistic not in STATISTICS:
            raise ValueError(f"statistic {statistic!r} is not one of {STATISTICS}")
        self.statistic = statistic

    def get_config(self) -> dict:
        return {**super().get_config(), "statistic": self.statistic}

    def call(self, x):
        if self.statistic == "mean":
            return ops.mean(x, axis=1)
        if self.statistic == "deviation":
            return ops.mean(ops.abs(x - ops.mean(x, axis=1, keepdims=True)), axis=1)
        if self.statistic == "max":
            return ops.max(x, axis=1)
        if self.statistic == "min":
            return ops.min(x, axis=1)
        return ops.mean(ops.abs(x[:, 1:] - x[:, :-1]), axis=1)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a (n_in, n_out) matrix: log-mel bands to cepstral coefficients."""
    k, n = np.arange(n_out)[None, :], np.arange(n_in)[:, None]
    matrix = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    matrix[:, 0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


def unit_cepstra(windows: np.ndarray | None, n_mels: int, n_cepstra: int) -> np.ndarray:
    """The DCT with each coefficient scaled to unit standard deviation on the band-normalized training windows.

    int8 gives a tensor one scale: unscaled, the first coefficient's range would leave the others a few steps."""
    matrix = dct_matrix(n_mels, n_cepstra)
    if windows is None:
        return matrix
    w = windows.astype(np.float32).reshape(-1, n_mels)
    cepstra = ((w - w.mean(0)) / np.maximum(w.std(0), 1e-6)) @ matrix
    return (matrix / np.maximum(cepstra.std(0), 1e-6)).astype(np.float32)


def time_statistics(bands, windows: np.ndarray | None, n_cepstra: int = 40):
    """Each TimeStat of the normalized log-mel and of its DCT coefficients, batch-normalized on its own
    before they are joined, so each keeps its own int8 scale."""
    frames, n_mels = bands.shape[1], bands.shape[2]
    n_cepstra = min(n_cepstra, n_mels)
    mel = layers.Reshape((frames, n_mels), name="stats_mel")(bands)
    dct = layers.Dense(n_cepstra, use_bias=False, trainable=False, name="stats_dct")
    cepstra = dct(mel)
    dct.set_weights([unit_cepstra(windows, n_mels, n_cepstra)])
    parts = [layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stats_{source}_{stat}_bn")(
                 TimeStat(stat, name=f"stats_{source}_{stat}")(x))
             for source, x in (("mel", mel), ("dct", cepstra)) for stat in STATISTICS]
    return layers.Concatenate(name="stats")(parts)


def build_compact(input_shape: tuple[int, int], n_classes: int, windows: np.ndarray | None = None,
                  spec: CompactSpec = CompactSpec()) -> keras.Model:
    """Depthwise-separable CNN with batch norm and global average pooling, beside a branch of time
    statistics per band (see CompactSpec.stats); runs in full int8."""
    inputs, bands = normalized_input(input_shape, windows)
    x = conv_bn_relu(bands, spec.stem, 3, strides=spec.stem_strides, name="stem_")
    for i, (filters, stride) in enumerate(zip(spec.widths, spec.strides)):
        x = separable_block(x, filters, stride, name=f"b{i}_")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if spec.stats:
        x = layers.Concatenate(name="features")([x, time_statistics(bands, windows)])
    x = layers.Dropout(spec.dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="compact")


def build_seed_multiscale(input_shape: tuple[int, int], n_classes: int, windows: np.ndarray | None = None,
                          filters: int = 32, kernels: tuple[int, ...] = (8, 16, 32, 64)) -> keras.Model:
    """Parallel 1xk then kx1 conv-BN-ReLU branches (k = 8..64) summed, two conv-BN-ReLU, GAP.

    The branches stride by 4 along each axis so the preset trains on a CPU in benchmark time.
    """
    inputs, x = normalized_input(input_shape, windows)
    branches = []
    for k in kernels:
        b = conv_bn_relu(x, filters, (1, k), strides=(1, 4), name=f"k{k}_freq_")
        branches.append(conv_bn_relu(b, filters, (k, 1), strides=(4, 1), name=f"k{k}_time_"))
    x = layers.Add(name="scales")(branches)
    x = conv_bn_relu(x, 128, 3, name="c1_")
    x = conv_bn_relu(x, 256, 3, strides=2, name="c2_")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="seed_multiscale")


def build_model(preset: str, input_shape: tuple[int, int], n_classes: int, windows: np.ndarray | None = None,
                spec: CompactSpec = CompactSpec()) -> keras.Model:
    if preset == "compact":
        return build_compact(input_shape, n_classes, windows, spec)
    if preset == "seed-multiscale":
        return build_seed_multiscale(input_shape, n_classes, windows)
    raise ValueError(f"preset {preset!r} is not a Keras model (Keras presets: compact, seed-multiscale)")
