"""The `soundsentry` command run as a user runs it: a subprocess, real files, JSON out."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest
import soundfile as sf

import synth

COMMANDS = ["classify", "evaluate", "run", "train", "convert", "flash", "inspect", "bench", "devices"]


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundsentry.device.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"soundsentry {command}" in result.stdout


def test_classify_real_clips_and_bad_files(esc50_dir, tone_bundle, tmp_path):
    good = [str(esc50_dir / "audio" / name) for name in ("4-107117-A-33.wav", "4-117627-A-25.wav")]
    truncated = tmp_path / "truncated.wav"
    sf.write(truncated, synth.tone(440, 1.0), 16000)
    truncated.write_bytes(truncated.read_bytes()[:-8000])
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.ogg"
    text.write_text("this is not audio\n")
    missing = tmp_path / "missing.flac"
    paths = [good[0], str(missing), str(empty), str(truncated), str(text), good[1]]
    result = cli("classify", *paths, "--model", str(tone_bundle), "--top", "2", "--json")
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == paths
    for line in (lines[0], lines[-1]):
        assert len(line["top"]) == 2 and {"label", "score"} <= set(line["top"][0])
        assert line["top"][0]["score"] >= line["top"][1]["score"]
    reasons = {line["path"]: line["error"] for line in lines[1:-1]}
    assert "no such file" in reasons[str(missing)]
    assert "empty file" in reasons[str(empty)]
    assert "truncated" in reasons[str(truncated)]
    assert "not a readable audio file" in reasons[str(text)]
    assert all(str(p) in reason for p, reason in reasons.items())


def test_classify_plain_output_and_messages(tone_bundle, tmp_path):
    stereo_48k = tmp_path / "stereo.flac"
    y = synth.clip("high_tone", 0, seconds=2.0, rate=48000)
    sf.write(stereo_48k, np.stack([y, y], axis=1), 48000)
    short = tmp_path / "short.ogg"
    sf.write(short, synth.clip("low_tone", 0, seconds=0.7), 16000)  # shorter than a window: padded
    result = cli("classify", str(stereo_48k), str(short), str(tmp_path / "gone.wav"), "--model", str(tone_bundle))
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert out[0].startswith(f"{stereo_48k}: high_tone ")
    assert out[1].startswith(f"{short}: low_tone ")
    assert f"soundsentry classify: {tmp_path / 'gone.wav'}: no such file" in result.stderr.splitlines()


def test_classify_all_good_exits_zero(tone_bundle, tmp_path):
    path = tmp_path / "chirp.wav"
    sf.write(path, synth.clip("chirp", 1, seconds=2.0, rate=44100), 44100)
    result = cli("classify", str(path), "--model", str(tone_bundle), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["top"][0]["label"] == "chirp"


def test_inspect_json_fields(tone_bundle):
    result = cli("inspect", str(tone_bundle), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for key in ("labels", "size_bytes", "input_dtype", "sample_rate", "window_s", "hop_s", "sha256", "name", "version"):
        assert key in info
    assert info["input_dtype"] == "int8" and info["sample_rate"] == 22050 and info["name"] == "tones"
    assert info["window_s"] == pytest.approx((63 * 353 + 1024) / 22050)
    human = cli("inspect", str(tone_bundle))
    assert human.returncode == 0 and "sha256" in human.stdout


def test_bad_bundle_is_one_line(tmp_path):
    bad = tmp_path / "bad.ssb"
    bad.write_bytes(b"junk")
    result = cli("inspect", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == f"soundsentry inspect: {bad}: not a soundsentry bundle (not a zip archive)"


def test_device_never_imports_training_libraries():
    code = (
        "import sys\n"
        "import soundsentry.device.cli, soundsentry.device.classify, soundsentry.device.frontend\n"
        "import soundsentry.device.classifier, soundsentry.device.bundle, soundsentry.device.audio\n"
        "import soundsentry.device.windows, soundsentry.device.settings\n"
        "soundsentry.device.cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'librosa', 'sklearn'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_default_model_is_shipped_and_runs_the_demo():
    info = json.loads(cli("inspect", "--json").stdout)
    assert info["input_dtype"] == "int8" and info["size_bytes"] <= 150_000
    assert "background" in info["background_labels"] and len(info["labels"]) == 51
    assert "NC" in info["provenance"]["license"]
    result = subprocess.run([sys.executable, "-m", "soundsentry.device.cli", "run", "--source", "demo", "--fast"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    starts = [json.loads(line) for line in result.stdout.splitlines() if '"type": "start"' in line]
    # the scene (device/assets/demo.json) has six sounds at 4, 11, 18, 25, 32 and 39 s in quiet noise
    assert {"dog", "crying_baby", "rooster"} <= {m["label"] for m in starts}
    sounds = json.loads((files("soundsentry.device.assets") / "demo.json").read_text())["events"]
    half = info["window_s"] / 2  # stream_start_s is the centre of the first window over the threshold
    in_quiet = [m for m in starts
                if not any(e["start_s"] < m["stream_start_s"] + half and m["stream_start_s"] - half < e["end_s"]
                           for e in sounds)]
    assert not in_quiet, in_quiet
