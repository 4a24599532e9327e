"""Shared fixtures: the real ESC-50 subset, tiny synthetic data sets, and a bundle trained on tones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import synth  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ESC50 = Path(os.environ.get("SOUNDSENTRY_ESC50", REPO.parent / "shared" / "data" / "esc50-subset"))


@pytest.fixture(scope="session")
def esc50_dir() -> Path:
    assert (ESC50 / "meta" / "esc50.csv").is_file(), f"the ESC-50 subset is missing at {ESC50}"
    return ESC50


@pytest.fixture(scope="session")
def tone_data(tmp_path_factory) -> Path:
    """Four synthetic classes (low tone, high tone, chirp, noise), six clips each, folder layout."""
    return synth.write_folders(tmp_path_factory.mktemp("tones"), per_class=6)


def fast_config(**fit):
    from soundsentry.train.config import TrainConfig

    config = TrainConfig()
    # the masks stay on for the tone model whatever the defaults: with six clips a class it needs them to tell
    # a high tone from the part of a chirp that passes through it
    return replace(config, augment=replace(config.augment, variants=0, mixup=False, time_masks=2, freq_masks=2),
                   fit=replace(config.fit, **{"epochs": 25, "patience": 100, "batch_size": 16, "windows_per_clip": 6,
                                              "learning_rate": 5e-3, "val_fraction": 0.25, **fit}))


@pytest.fixture(scope="session")
def tone_cache(tmp_path_factory) -> Path:
    """One feature cache for the tone trainings: their features agree, so the second run reads the first's."""
    return tmp_path_factory.mktemp("cache")


def train_tones(tone_data: Path, out: Path, cache: Path, **fit) -> Path:
    """A training run on the tone data (a few seconds on a CPU): model.keras and run.json."""
    from soundsentry.train.run import train

    train(tone_data, out, config=fast_config(**fit), cache_dir=cache, verbose=0)
    return out


@pytest.fixture(scope="session")
def tone_run(tone_data, tone_cache, tmp_path_factory) -> Path:
    """The tone model with a quarter of the clips held out, so the run reports a validation accuracy."""
    return train_tones(tone_data, tmp_path_factory.mktemp("run") / "tones", tone_cache)


@pytest.fixture(scope="session")
def tone_bundle(tone_data, tone_cache, tmp_path_factory) -> Path:
    """A tone model trained as the shipped default is, nothing held out, converted to a full-int8 bundle.

    The device tests' scenes play tones over faint noise. Trained on three quarters of the clips, the toy
    model called that noise low_tone at up to 0.46 on one machine (over events.off, so events ran long);
    trained on all of them, 0.06."""
    from soundsentry.convert.convert import convert_model

    run = train_tones(tone_data, tmp_path_factory.mktemp("run") / "tones-all", tone_cache, val_fraction=0.0)
    out = tmp_path_factory.mktemp("bundle") / "tones.ssb"
    convert_model(run / "model.keras", tone_data, out, name="tones", version="test", min_agreement=0.0)
    return out


class VirtualMic:
    """A null sink on the tests' own PulseAudio server: PyAudio records from its monitor like a mic, and as the
    server has no other device, unloading the sink takes the only input away, as unplugging a USB mic does."""

    SINK = "soundsentry_test_mic"

    def __init__(self) -> None:
        self.module: str | None = None

    def plug(self) -> None:
        self.module = pactl("load-module", "module-null-sink", f"sink_name={self.SINK}",
                            "sink_properties=device.description=SoundsentryTestMic").strip()
        pactl("set-default-source", f"{self.SINK}.monitor")

    def unplug(self) -> None:
        if self.module:
            pactl("unload-module", self.module)
            self.module = None

    @contextmanager
    def playing(self, path):
        """Plays `path` into the mic in the background and stops it on leaving, so a test can end while the
        room still sounds (a real room never falls to digital zeros; a toy model may call that edge a sound)."""
        player = subprocess.Popen(["paplay", f"--device={self.SINK}", str(path)])
        try:
            yield
        finally:
            player.terminate()
            player.wait(timeout=20)


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture(scope="session")
def pulse_mic(tmp_path_factory):
    """A PulseAudio server of the tests' own (no default modules, a private socket that PULSE_SERVER names for
    every client, the daemons under test included) with a null sink as the microphone."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install pulseaudio pulseaudio-utils"
    runtime = tmp_path_factory.mktemp("pulse")
    socket = runtime / "native"
    with open(runtime / "server.log", "w") as log, pytest.MonkeyPatch.context() as env:
        env.setenv("PULSE_RUNTIME_PATH", str(runtime))
        env.setenv("PULSE_SERVER", f"unix:{socket}")
        server = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                                   f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1"],
                                  stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while subprocess.run(["pactl", "info"], capture_output=True, timeout=20).returncode != 0:
                assert server.poll() is None and time.monotonic() < deadline, \
                    f"PulseAudio did not start: {(runtime / 'server.log').read_text()[-2000:]}"
                time.sleep(0.1)
            mic = VirtualMic()
            mic.plug()
            yield mic
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def broker(tmp_path):
    """Debian's mosquitto on a free loopback port, stopped after the test."""
    from broker import Mosquitto

    root = tmp_path / "mosquitto"
    root.mkdir()
    mosquitto = Mosquitto(root)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()
