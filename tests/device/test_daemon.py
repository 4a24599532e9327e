"""`soundsentry run` with real parts: file scenes, the PulseAudio virtual mic, signals, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import synth
from soundsentry.device.classifier import open_model
from soundsentry.device.events import EventDetector, EventsConfig, StreamClock
from soundsentry.device.pipeline import Pipeline
from soundsentry.device.audio import read_audio
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.sources import find_input


def daemon(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soundsentry.device.cli", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def run_to_end(*args: str, timeout: float = 120) -> tuple[int, list[dict], str]:
    proc = daemon(*args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("rate", [16000, 44100])
def test_scene_from_a_file(tone_bundle, tmp_path, rate):
    scene = tmp_path / "scene.flac"
    truth = synth.write_scene(scene, rate=rate)
    code, messages, err = run_to_end("--source", f"file:{scene}", "--fast", "--model", str(tone_bundle),
                                     "--device-id", "kitchen")
    assert code == 0, err
    synth.check_against_truth(messages, truth)
    assert {m["device_id"] for m in messages} == {"kitchen"}
    assert "first window classified" in err


def pipeline_outputs(bundle: Path, audio: np.ndarray, rate: int, block: int):
    classifier = open_model(bundle)
    detector = EventDetector(classifier.labels, EventsConfig(), device_id="d", model={}, clock=StreamClock(0.0),
                             background=classifier.bundle.background_labels)
    pipeline = Pipeline(classifier, detector, rate)
    scored, messages = [], []
    for i in range(0, len(audio), block):
        s, m = pipeline.push(audio[i : i + block])
        scored += s
        messages += m
    s, m = pipeline.finish()
    return scored + s, messages + m


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_chunk_size_does_not_change_scores_or_events(tone_bundle, tmp_path, rate):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, rate=rate, seconds=8.0, events=(("chirp", 2.0), ("low_tone", 5.0)))
    audio, rate = read_audio(scene)
    exact = rate == open_model(tone_bundle).bundle.frontend.sample_rate  # no resampler: bit for bit
    runs = [pipeline_outputs(tone_bundle, audio, rate, block) for block in (256, 1000, 4410, 16000)]
    reference_scores = np.stack([s.scores for s in runs[0][0]])
    strip = lambda ms: [(m["type"], m["label"], m["stream_start_s"], m.get("stream_end_s")) for m in ms]  # noqa: E731
    for scored, messages in runs[1:]:
        assert [s.end_s for s in scored] == [s.end_s for s in runs[0][0]]
        # int8 input: a block boundary may move a value across a rounding edge at most (resampling)
        assert np.max(np.abs(np.stack([s.scores for s in scored]) - reference_scores)) <= (0.0 if exact else 0.02)
        assert strip(messages) == strip(runs[0][1])


def test_truncated_file_keeps_what_was_read(tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    truth = synth.write_scene(scene, seconds=12.0)
    data = scene.read_bytes()
    scene.write_bytes(data[: int(len(data) * 0.6)])  # cut after the second sound (at 7.2 s)
    code, messages, err = run_to_end("--source", f"file:{scene}", "--fast", "--model", str(tone_bundle))
    assert code == 1
    synth.check_against_truth(messages, truth[:2])
    assert f"{scene}: truncated" in err


@pytest.mark.parametrize("source, message", [
    ("file:/nonexistent/scene.wav", "/nonexistent/scene.wav: no such file"),
    ("mic:NoSuchMicrophoneAnywhere", "source 'mic:NoSuchMicrophoneAnywhere': no such input device"),
    ("tape:1", "is not mic, mic:INDEX, mic:NAME, file:PATH or demo"),
])
def test_bad_sources_are_named(tone_bundle, source, message):
    code, messages, err = run_to_end("--source", source, "--model", str(tone_bundle))
    assert code in (1, 2) and messages == []
    assert message in err.strip().splitlines()[-1]


def test_inputs_found_by_index_or_name_and_missing_ones_named():
    usb = {"index": 3, "name": "USB mic", "default_rate": 48000}
    assert find_input("mic:usb", [usb], None) is usb and find_input("mic:3", [usb], None) is usb
    for inputs in ([], [usb]):  # CI machines may have no audio device at all
        with pytest.raises(SoundsentryError, match="source 'mic:Nope': no such input device"):
            find_input("mic:Nope", inputs, None)


@pytest.mark.parametrize("toml, message", [
    ("gate_dbfs = 12.0\n", "gate_dbfs: 12.0 is out of range (-140.0..0.0)"),
    ("[events]\non = 'high'\n", "events.on: must be float, got 'high'"),
    ("[events]\nthreshold = 0.5\n", "events.threshold: unknown key"),
    ("[source]\nblock_s = 0\n", "source.block_s: 0.0 is out of range (0.001..2.0)"),
    ("colour = 'blue'\n", "colour: unknown key"),
    ("[events\n", "not valid TOML"),
])
def test_bad_config_exits_2_naming_the_key(tmp_path, toml, message):
    path = tmp_path / "config.toml"
    path.write_text(toml)
    code, messages, err = run_to_end("--config", str(path), "--print-config")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert str(path) in line and message in line


def test_print_config_round_trips(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("device_id = 'hall'\n[events]\non = 0.6\n[events.labels.chirp]\non = 0.9\n")
    result = subprocess.run([sys.executable, "-m", "soundsentry.device.cli", "run", "--config", str(path),
                             "--print-config", "--source", "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    printed = tmp_path / "printed.toml"
    printed.write_text(result.stdout)
    assert "device_id = \"hall\"" in result.stdout and 'name = "demo"' in result.stdout
    again = subprocess.run([sys.executable, "-m", "soundsentry.device.cli", "run", "--config", str(printed),
                            "--print-config"], capture_output=True, text=True, timeout=60)
    assert again.stdout == result.stdout


def wait_for(path: Path, text: str, timeout: float = 30.0, since: int = 0) -> int:
    """Waits for `text` to be logged at or after offset `since`; returns the offset just past it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = path.read_text().find(text, since)
        if found >= 0:
            return found + len(text)
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not seen within {timeout} s: {path.read_text()[since:][-3000:]}")


def test_sigterm_flushes_open_events_and_sighup_reloads(tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=6.0, events=(("chirp", 1.0),), sound_s=4.5)
    config = tmp_path / "config.toml"
    config.write_text(f"model = '{tone_bundle}'\n")
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "soundsentry.device.cli", "run", "--config", str(config),
                                 "--source", f"file:{scene}"], stdout=subprocess.PIPE, stderr=err, text=True)
        wait_for(log, "first window classified")
        config.write_text(f"model = '{tone_bundle}'\n[events]\non = 0.6\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(log, "reloaded config and model")
        time.sleep(2.5)  # into the chirp, which lasts until 5.5 s
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, log.read_text()
    messages = [json.loads(line) for line in out.splitlines()]
    assert [(m["type"], m["label"]) for m in messages] == [("start", "chirp"), ("end", "chirp")]
    assert messages[1]["stream_end_s"] < 5.0  # ended by the signal, not by the sound


def test_scene_through_the_virtual_microphone(pulse_mic, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    truth = synth.write_scene(scene, rate=44100, seconds=18.0)
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "soundsentry.device.cli", "run", "--source", "mic:pulse",
                                 "--rate", "48000", "--model", str(tone_bundle)], stdout=subprocess.PIPE, stderr=err,
                                text=True)
        wait_for(log, "first window classified")
        played_at = time.time()
        with pulse_mic.playing(scene):
            time.sleep(truth[-1][2] + 3.5)  # the last sound, its two quiet windows and the latency
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, log.read_text()
    messages = [json.loads(line) for line in out.splitlines()]
    for m in messages:
        m["wall_s"] = datetime.fromisoformat(m["start"].replace("Z", "+00:00")).timestamp() - played_at
    synth.check_against_truth(messages, truth, key="wall_s")


def test_microphone_that_disappears_is_picked_up_again(pulse_mic, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=8.0, events=(("high_tone", 1.0),))
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "soundsentry.device.cli", "run", "--source", "mic:pulse",
                                 "--model", str(tone_bundle)], stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            seen = wait_for(log, "first window classified")
            assert "stopped delivering" not in log.read_text(), log.read_text()  # a slow first block is no loss
            pulse_mic.unplug()
            seen = wait_for(log, "stopped delivering audio", timeout=20, since=seen)
            seen = wait_for(log, "microphone unavailable", timeout=20, since=seen)  # gone, not just quiet
            pulse_mic.plug()
            seen = wait_for(log, "is back", timeout=60, since=seen)
            wait_for(log, "of audio lost", timeout=20, since=seen)
            time.sleep(1.0)
            with pulse_mic.playing(scene):
                time.sleep(5.5)
                proc.send_signal(signal.SIGTERM)
                out, _ = proc.communicate(timeout=30)
        finally:
            if pulse_mic.module is None:
                pulse_mic.plug()
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)
    assert proc.returncode == 0, log.read_text()
    labels = [json.loads(line)["label"] for line in out.splitlines() if json.loads(line)["type"] == "start"]
    assert labels == ["high_tone"], log.read_text()
