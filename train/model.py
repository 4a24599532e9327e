"""Keras models on log-mel windows: the compact default and the `seed-multiscale` comparison preset.

Input is raw log-mel dB, shape (frames, n_mels, 1); the first layer is a Normalization adapted on the
training windows, so scaling lives in the model and the device feeds the front end's output as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

BN_MOMENTUM = 0.9  # Keras' 0.99 leaves the moving statistics unsettled after the few hundred steps small data sets give
PRESETS = ("compact", "seed-multiscale", "baseline-mfcc-logreg")


@dataclass(frozen=True, kw_only=True)
class CompactSpec:
    """Width and depth of the compact model: a stem conv, then depthwise-separable blocks."""

    stem: int = 16
    blocks: tuple[tuple[int, int], ...] = ((32, 2), (32, 1), (64, 2), (64, 1), (96, 2), (96, 1))
    """(channels, stride) of each depthwise-separable block."""
    dropout: float = 0.3


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


def build_compact(input_shape: tuple[int, int], n_classes: int, windows: np.ndarray | None = None,
                  spec: CompactSpec = CompactSpec()) -> keras.Model:
    """Depthwise-separable CNN with batch norm and global average pooling; runs in full int8."""
    inputs, x = normalized_input(input_shape, windows)
    x = conv_bn_relu(x, spec.stem, 3, strides=2, name="stem_")
    for i, (filters, stride) in enumerate(spec.blocks):
        x = separable_block(x, filters, stride, name=f"b{i}_")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
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


def build_model(preset: str, input_shape: tuple[int, int], n_classes: int, windows: np.ndarray | None = None) -> keras.Model:
    if preset == "compact":
        return build_compact(input_shape, n_classes, windows)
    if preset == "seed-multiscale":
        return build_seed_multiscale(input_shape, n_classes, windows)
    raise ValueError(f"preset {preset!r} is not a Keras model (Keras presets: compact, seed-multiscale)")
