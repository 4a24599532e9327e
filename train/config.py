"""The training configuration: one nested dataclass, loaded from TOML and validated at load."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from soundsentry.device.frontend import FrontEndParams
from soundsentry.device.errors import UsageError
from soundsentry.device.settings import from_mapping, load_toml, option

from .model import PRESETS, CompactSpec


@dataclass(frozen=True, kw_only=True)
class WindowConfig:
    frames: int = option(64, min=8, max=1024, help="frames in one model window (64 x 16 ms = about 1 s)")
    hop_frames: int = option(16, min=1, max=1024, help="frames between two windows on the device")


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    noise: bool = option(True, help="add white noise at a random SNR")
    noise_snr_db: tuple[float, float] = option((15.0, 40.0), min=-10, max=100, help="range of the noise's SNR in "
                                               "dB (5 to 30 and 25 to 50 were each 6.9 points of CV accuracy "
                                               "under it, on two and four folds: BENCHMARKS.md)")
    shift: bool = option(True, help="roll the waveform by up to a window, zeroing the wrapped part")
    gain: bool = option(True, help="scale the volume")
    gain_db: tuple[float, float] = option((-12.0, 6.0), min=-60, max=30, help="range of the volume change in dB "
                                          "(-6 to +3 was 3.4 and 1.7 points of CV accuracy under it on two "
                                          "folds: BENCHMARKS.md)")
    stretch: bool = option(True, help="time-stretch variants (librosa), precomputed and cached")
    stretch_rates: tuple[float, float] = option((0.85, 1.15), min=0.5, max=2.0)
    pitch: bool = option(True, help="pitch-shift variants (librosa), precomputed and cached")
    pitch_steps: tuple[float, float] = option((-2.0, 2.0), min=-12, max=12)
    variants: int = option(2, min=0, max=10, help="stretch/pitch variants precomputed per clip")
    background_dir: str = option("", help="folder of room recordings to mix in ('' = off)")
    background_snr_db: tuple[float, float] = option((0.0, 20.0), min=-20, max=60)
    background_class: bool = option(True, help="add a 'background' class of quiet coloured noise (and "
                                     "background_dir recordings), so quiet rooms have a label of their own")
    background_level_dbfs: tuple[float, float] = option((-80.0, -35.0), min=-140, max=0)
    probability: float = option(0.8, min=0.0, max=1.0, help="chance each waveform augmentation is applied (0.5 "
                                "was level with 0.8, -0.7 points of CV accuracy: BENCHMARKS.md)")
    mixup: bool = option(False, help="mix pairs of windows and their labels (off: on the ESC-50 subset it "
                                      "cost 7.6 points of CV accuracy together with the masks, BENCHMARKS.md)")
    mixup_alpha: float = option(0.2, min=0.0, max=10.0)
    time_masks: int = option(0, min=0, max=10, help="SpecAugment time masks per window")
    time_mask_frames: int = option(8, min=0, max=256)
    freq_masks: int = option(0, min=0, max=10, help="SpecAugment frequency masks per window")
    freq_mask_bands: int = option(8, min=0, max=256)
    equalize_db: float = option(6.0, min=0.0, max=40.0, help="random equalizer per window, gains up to this many "
                                "dB either way over the mel bands, as another microphone or room colours "
                                "sound (0: off; with rolloff, 6 holds up on other microphones, BENCHMARKS.md)")
    equalize_knots: int = option(5, min=2, max=64, help="points of the equalizer's curve, spread over the bands")
    rolloff: bool = option(True, help="random band limit per window, as a small or cheap microphone has: "
                           "high- and low-pass slopes with random corners (BENCHMARKS.md)")
    rolloff_low_hz: tuple[float, float] = option((20.0, 400.0), min=0, max=24000)
    rolloff_high_hz: tuple[float, float] = option((3000.0, 12000.0), min=1, max=48000)


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    epochs: int = option(160, min=1, max=10000, help="passes over the augmented windows; 160 against 80 raised "
                         "compact's CV accuracy, at twice the training time; 320 was level with 160 "
                         "(BENCHMARKS.md)")
    batch_size: int = option(32, min=1, max=4096, help="windows per training step (16 was level with 32, -0.5 "
                             "points of CV accuracy over two seeds: BENCHMARKS.md)")
    learning_rate: float = option(3e-3, min=1e-6, max=1.0, help="peak learning rate (1e-3 and 1e-2 were 2.4 and "
                                  "2.1 points of CV accuracy under 3e-3: BENCHMARKS.md)")
    amsgrad: bool = option(True, help="Adam with the AMSGrad variant (plain Adam was 1.4 points of CV accuracy "
                           "under it, within the noise: BENCHMARKS.md)")
    weight_decay: float = option(0.0, min=0.0, max=1.0, help="decoupled weight decay (as AdamW), times the "
                                 "learning rate each step, on kernels only (not batch norm or biases); 0: off "
                                 "(0.05 moved CV accuracy by +2.4 and -2.0 points on two seeds: BENCHMARKS.md)")
    ema_momentum: float = option(0.0, min=0.0, max=0.9999, help="keep an exponential moving average of the "
                                 "weights with this momentum and end on it (0.999: about the last 1,000 steps); "
                                 "0: off, the last weights are kept. With a val_fraction, early stopping's restore "
                                 "of its best epoch replaces the average. (0.999 was level with off, -0.3 points "
                                 "of CV accuracy: BENCHMARKS.md)")
    schedule: str = option("cosine", choices=("cosine", "plateau", "constant"))
    patience: int = option(20, min=1, max=1000, help="epochs without val_accuracy improvement before stopping")
    val_fraction: float = option(0.0, min=0.0, max=0.5, help="recordings held out for early stopping and "
                                 "best-weight restore; 0: none, every recording trains the whole schedule and "
                                 "the last weights are kept (on the ESC-50 subset, +2.4 points of CV accuracy "
                                 "against 0.15: BENCHMARKS.md)")
    windows_per_clip: int = option(4, min=1, max=64, help="active windows drawn from each clip per epoch (2 at "
                                   "320 epochs was level with 4 at 160, +1.4 points of CV accuracy within the "
                                   "noise: BENCHMARKS.md)")
    label_smoothing: float = option(0.05, min=0.0, max=0.5, help="share of each target spread over the other "
                                    "classes (0 and 0.1 were 3.1 and 4.1 points of CV accuracy under 0.05: "
                                    "BENCHMARKS.md)")
    seed: int = option(0, min=0)
    mixed_precision: bool = option(False, help="float16 compute on GPUs that support it")

    def __post_init__(self) -> None:
        if self.schedule == "plateau" and self.val_fraction == 0:
            raise ValueError("schedule = 'plateau' watches the validation loss: set fit.val_fraction above 0")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    preset: str = option("compact", choices=PRESETS)
    frontend: FrontEndParams = field(default_factory=FrontEndParams)
    window: WindowConfig = field(default_factory=WindowConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    model: CompactSpec = field(default_factory=CompactSpec)


def feature_config(frontend: FrontEndParams, window: dict, *, background_class: bool) -> TrainConfig:
    """The config that extracts a trained model's windows from a data set: its front end and window,
    no stretch/pitch variants; with or without the synthetic background clips."""
    config = TrainConfig(frontend=frontend, window=WindowConfig(frames=window["frames"], hop_frames=window["hop_frames"]))
    return replace(config, augment=replace(config.augment, variants=0, background_class=background_class))


def load_train_config(path: str | Path | None = None, *, preset: str | None = None) -> TrainConfig:
    """Defaults, overridden by a TOML file, then by --preset."""
    config = from_mapping(TrainConfig, load_toml(path)) if path else TrainConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"--preset {preset!r} is not one of {', '.join(PRESETS)}")
        config = replace(config, preset=preset)
    return config
