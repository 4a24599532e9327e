"""The training loop: augmented epochs, Adam (AMSGrad), a learning-rate schedule, early stopping with
best-weight restore, fixed seeds; on a GPU when there is one, mirrored over several."""

from __future__ import annotations

import contextlib
import logging
import math
import sys

import keras
import numpy as np
import tensorflow as tf

from .augment import mixup
from .config import FitConfig, TrainConfig
from .features import FeatureSet, sample_epoch
from .model import build_model

log = logging.getLogger("soundsentry.train.fit")
WARMUP_EPOCHS = 10


def distribution(mixed_precision: bool) -> tf.distribute.Strategy:
    """MirroredStrategy over several GPUs, the default strategy otherwise; mixed float16 on request."""
    gpus = tf.config.list_physical_devices("GPU")
    log.info("devices: %s", ", ".join(g.name for g in gpus) or "CPU only")
    if mixed_precision:
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log.warning("mixed_precision asked for but no GPU: training in float32")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def make_optimizer(f: FitConfig, learning_rate) -> keras.optimizers.Optimizer:
    """Adam (AMSGrad on request) with decoupled weight decay on the kernels, batch norm and biases keeping theirs;
    with an ema_momentum, fit ends on the moving average of the weights."""
    optimizer = keras.optimizers.Adam(learning_rate, amsgrad=f.amsgrad, weight_decay=f.weight_decay or None,
                                      use_ema=f.ema_momentum > 0, ema_momentum=f.ema_momentum)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def fresh_model(features: FeatureSet, fit_idx: np.ndarray, config: TrainConfig) -> keras.Model:
    """The preset's untrained model for these clips, its input normalization adapted on their windows."""
    return build_model(config.preset, (features.window_frames, features.params.n_mels), len(features.labels),
                       features.windows_of(fit_idx)[0], config.model)


def schedule(f: FitConfig, steps: int):
    """The learning rate over `steps` steps: cosine decay to 2 % of it, or constant; plateau lowers it by callback."""
    return keras.optimizers.schedules.CosineDecay(f.learning_rate, steps, alpha=0.02) if f.schedule == "cosine" \
        else f.learning_rate


class EpochData(keras.utils.PyDataset):
    """Fresh augmented windows every epoch with their targets (one-hot labels), mixup applied per batch."""

    def __init__(self, features: FeatureSet, indices: np.ndarray, config: TrainConfig) -> None:
        super().__init__()
        self.features, self.indices, self.config = features, indices, config
        self.rng = np.random.default_rng(config.fit.seed)
        self.n_classes = len(features.labels)
        self._draw()

    def _draw(self) -> None:
        self.x, y = sample_epoch(self.features, self.indices, self.config, self.rng)
        self.targets = keras.utils.to_categorical(y, self.n_classes).astype(np.float32)
        self.order = self.rng.permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.config.fit.batch_size)

    def __getitem__(self, i: int):
        bs = self.config.fit.batch_size
        pick = self.order[i * bs : (i + 1) * bs]
        x, y = self.x[pick][..., None], self.targets[pick]
        if self.config.augment.mixup and len(pick) > 1:
            x, y, _ = mixup(x, y, self.config.augment.mixup_alpha, self.rng)
        return x, y

    def on_epoch_end(self) -> None:
        self._draw()


def fit_model(features: FeatureSet, fit_idx: np.ndarray, val_idx: np.ndarray, config: TrainConfig,
              *, verbose: int | None = None, data: EpochData | None = None,
              model: keras.Model | None = None) -> tuple[keras.Model, dict]:
    """Train one model on the clips `fit_idx`, stopping early on the clean windows of `val_idx`; with no
    `val_idx`, through the whole schedule. `data` replaces the default epochs and `model` the freshly built
    one (benchmarks teach and pretrain with them)."""
    f = config.fit
    keras.utils.set_random_seed(f.seed)
    strategy = distribution(f.mixed_precision)
    data = EpochData(features, fit_idx, config) if data is None else data
    steps = len(data) * f.epochs
    with strategy.scope():
        model = fresh_model(features, fit_idx, config) if model is None else model
        model.compile(optimizer=make_optimizer(f, schedule(f, steps)),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=f.label_smoothing),
                      metrics=["accuracy"])
    val, callbacks = None, []
    if len(val_idx):
        val_x, val_y = features.windows_of(val_idx)
        val = (val_x[..., None], keras.utils.to_categorical(val_y, len(features.labels)))
        # val_accuracy, not val_loss: on a few dozen validation clips the loss rises early as the model grows
        # confident, and stopping on it restored first-epoch weights (seen: 1.7% accuracy on 3 of 5 folds).
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=f.patience,
                                                       restore_best_weights=True, start_from_epoch=WARMUP_EPOCHS))
        if f.schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5,
                                                               patience=max(2, f.patience // 3)))
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    with contextlib.redirect_stdout(sys.stderr):  # Keras prints progress on stdout, which carries results
        history = model.fit(data, validation_data=val, epochs=f.epochs, callbacks=callbacks, verbose=verbose)
    return model, history.history


def predict_windows(model: keras.Model, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return model.predict(windows[..., None], batch_size=batch_size, verbose=0)
