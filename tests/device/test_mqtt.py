"""MQTT with real parts: mosquitto on a loopback port, the daemon as a process, a paho subscriber."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import pytest

import synth
from broker import Mosquitto, Subscriber, free_port, make_tls
from soundsentry.device.discovery import Topics, discovery_configs
from soundsentry.device.errors import SoundsentryError
from soundsentry.device.spool import Spool

LABELS = ["low_tone", "high_tone", "chirp"]
MODEL = {"name": "tones", "version": "test", "sha256": "0" * 64}


def long_scene(path: Path, seconds: float, first: float = 2.0, every: float = 3.0) -> list:
    """Sounds every `every` seconds, cycling through three labels (so no label's cooldown is in the way)."""
    events = [(LABELS[i % 3], first + i * every) for i in range(int((seconds - first - 2.0) // every) + 1)]
    return synth.write_scene(path, seconds=seconds, events=tuple(events))


def start_daemon(bundle: Path, source: Path, state: Path, *args: str, config: str = "", fast: bool = False,
                 debug: bool = False, env: dict | None = None) -> subprocess.Popen:
    conf = state.parent / f"{state.name}.toml"
    conf.write_text(f"device_id = 'kitchen'\nstate_dir = '{state}'\nlog_level = '{'DEBUG' if debug else 'INFO'}'\n[mqtt]\nretry_min_s = 0.2\nretry_max_s = 1.0\n"
                    f"level_interval_s = 0.5\nstatus_interval_s = 1.0\n{config}")
    cmd = [sys.executable, "-m", "soundsentry.device.cli", "run", "--config", str(conf), "--model", str(bundle),
           "--source", f"file:{source}", *(["--fast"] if fast else []), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen, sig: int | None = signal.SIGTERM, timeout: float = 60) -> tuple[int, str, str]:
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def spooled(state: Path) -> int:
    """Events waiting in the daemon's spool; 0 until the daemon has created it."""
    path = state / "spool.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
            return 0
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def in_order_without_repeats(messages: list[dict]) -> tuple[list[dict], int]:
    """Messages with repeated ids (QoS 1 may deliver twice) removed, and how many there were."""
    seen, unique = set(), []
    for m in messages:
        key = (m["id"], m["type"])
        if key not in seen:
            seen.add(key)
            unique.append(m)
    return unique, len(messages) - len(unique)


# Pure parts: the spool and the discovery payloads.

def test_spool_keeps_order_survives_reopen_and_drops_oldest_when_full(tmp_path):
    spool = Spool(tmp_path / "s.sqlite", max_items=3)
    seqs = [spool.put("t", f"m{i}") for i in range(5)]
    assert [p for _, _, p in spool.after(0, 10)] == ["m2", "m3", "m4"] and spool.dropped == 2
    spool.remove(seqs[2])
    spool.close()
    again = Spool(tmp_path / "s.sqlite", max_items=3)
    assert [p for _, _, p in again.after(0, 10)] == ["m3", "m4"] and again.dropped == 2
    assert [p for _, _, p in again.after(seqs[3], 10)] == ["m4"]


def test_spool_that_is_not_a_database_is_named(tmp_path):
    bad = tmp_path / "spool.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SoundsentryError, match=f"{bad}: not a usable spool database"):
        Spool(bad)


def render(template: str, message: dict) -> str:
    """Home Assistant renders value templates with Jinja2 and `value_json` bound to the parsed payload."""
    return jinja2.Environment().from_string(template).render(value_json=message).strip()


def test_discovery_payloads_have_what_home_assistant_requires():
    topics = Topics.under("soundsentry", "kitchen.local")
    configs = discovery_configs(topics, discovery_prefix="homeassistant", listened=LABELS, alert_labels=["chirp"],
                                model=MODEL, sw_version="1.0")
    components = {topic.split("/")[1] for topic in configs}
    assert components == {"event", "sensor", "binary_sensor"}
    assert len({c["unique_id"] for c in configs.values()}) == len(configs) == 4
    for topic, c in configs.items():
        prefix, component, node, object_id, leaf = topic.split("/")
        assert (prefix, node, leaf) == ("homeassistant", "soundsentry_kitchen_local", "config")
        assert c["availability_topic"] == "soundsentry/kitchen.local/availability"
        assert c["device"]["identifiers"] == ["soundsentry_kitchen_local"]
        assert {"name", "model", "sw_version"} <= set(c["device"]) and c["state_topic"] and c["schema"] == 1
    event = next(c for t, c in configs.items() if t.split("/")[1] == "event")
    assert event["event_types"] == LABELS and event["state_topic"] == topics.events
    start = {"type": "start", "id": "a1", "label": "chirp", "score": 0.9, "dbfs": -20.0}
    fired = json.loads(render(event["value_template"], start))
    assert fired["event_type"] in event["event_types"] and fired["id"] == "a1"
    assert render(event["value_template"], {**start, "type": "end"}) == ""  # HA ignores empty output
    alert = next(c for t, c in configs.items() if t.split("/")[1] == "binary_sensor")
    assert render(alert["value_template"], start) == alert["payload_on"]
    assert render(alert["value_template"], {**start, "type": "end"}) == alert["payload_off"]
    assert render(alert["value_template"], {**start, "label": "low_tone"}) == ""
    level = next(c for t, c in configs.items() if t.endswith("sound_level/config"))
    assert level["state_topic"] == topics.level and render(level["value_template"], {"dbfs": -41.5}) == "-41.5"


def test_password_from_url_then_file_then_environment(tmp_path):
    from soundsentry.device.config import MqttConfig

    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    env = {"SOUNDSENTRY_MQTT_PASSWORD": "from-env"}
    assert MqttConfig(url="mqtt://u:in-url@h").broker(env).password == "in-url"
    assert MqttConfig(url="mqtt://u@h", password_file=str(secret)).broker(env).password == "from-file"
    assert MqttConfig(url="mqtt://u@h").broker(env).password == "from-env"
    assert MqttConfig(url="mqtt://u@h").broker({}).password is None
    assert MqttConfig(url="mqtt://u:in-url@h:1884").broker(env).redacted() == "mqtt://u:***@h:1884"


# The daemon with a broker.

def test_scene_arrives_as_events_status_level_and_discovery(broker, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    truth = synth.write_scene(scene, seconds=12.0)
    sub = Subscriber(broker.port)
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url,
                        config="alert_labels = ['chirp']\nscores = true\nscores_top_k = 2\n")
    code, _, err = finish(proc, sig=None)
    assert code == 0, err
    events = sub.wait(lambda: len(sub.on("soundsentry/kitchen/events")) >= 2 * len(truth) or None, 10, "events")
    messages, repeats = in_order_without_repeats(sub.events("soundsentry/kitchen/events"))
    synth.check_against_truth(messages, truth)
    assert repeats == 0 and events
    assert sub.on("soundsentry/kitchen/availability") == [b"online", b"offline"]
    status = sub.events("soundsentry/kitchen/status")[-1]
    for key in ("uptime_s", "source", "rate", "rtf", "cpu_percent", "rss_mb", "windows", "blocks_dropped",
                "spool_depth", "spool_dropped", "model", "last_event"):
        assert key in status, key
    assert status["schema"] == 1 and status["model"]["name"] == "tones" and status["rate"] == 16000
    levels = sub.events("soundsentry/kitchen/level")
    assert levels and all(-120 < m["dbfs"] < 0 for m in levels)
    scores = sub.events("soundsentry/kitchen/scores")
    assert 5 <= len(scores) <= 14  # one a second at most, over a 12 s scene
    for m in scores:
        top = [t["score"] for t in m["top"]]
        assert len(top) == 2 and top == sorted(top, reverse=True) and {t["label"] for t in m["top"]} <= {*LABELS, "noise", "background"}
    assert any(m["top"][0]["label"] == "chirp" for m in scores)
    sub.close()
    # Retained: a dashboard that subscribes later still sees discovery, the last status and `offline`.
    late = Subscriber(broker.port)
    late.wait(lambda: len([1 for _, t, _, r in late.messages if r and t.startswith("homeassistant/")]) == 4, 10,
              "retained discovery configs")
    late.wait(lambda: late.on("soundsentry/kitchen/availability") == [b"offline"], 10, "retained offline")
    assert late.on("soundsentry/kitchen/status") and not late.on("soundsentry/kitchen/events")
    configs = {t: json.loads(p) for _, t, p, _ in late.messages if t.startswith("homeassistant/")}
    assert configs["homeassistant/binary_sensor/soundsentry_kitchen/alert_chirp/config"]["name"] == "Chirp"
    assert spooled(tmp_path / "state") == 0
    late.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_availability_offline_on_stop_and_by_last_will(broker, tone_bundle, tmp_path, sig):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=30.0, events=())
    sub = Subscriber(broker.port, "soundsentry/kitchen/availability")
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url)
    sub.wait(lambda: sub.on("soundsentry/kitchen/availability") == [b"online"], 30, "online")
    finish(proc, sig)
    sub.wait(lambda: sub.on("soundsentry/kitchen/availability") == [b"online", b"offline"], 10, "offline")


def test_home_assistant_birth_resends_discovery_and_removed_alerts_are_emptied(broker, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=30.0, events=())
    sub = Subscriber(broker.port, "homeassistant/#")
    alert = "homeassistant/binary_sensor/soundsentry_kitchen/alert_chirp/config"
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url,
                        config="alert_labels = ['chirp']\n")
    sub.wait(lambda: len(sub.on(alert)) == 1, 30, "discovery")
    sub.client.publish("homeassistant/status", "online", qos=1)
    sub.wait(lambda: len(sub.on(alert)) == 2, 10, "discovery again after Home Assistant's birth message")
    finish(proc)
    # The same device restarted without that alert label: its binary_sensor config is removed (empty, retained).
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url)
    sub.wait(lambda: sub.on(alert)[-1:] == [b""], 30, "the alert's config emptied")
    finish(proc)
    sub.close()


def test_broker_outage_loses_nothing_and_keeps_order(broker, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    truth = long_scene(scene, seconds=26.0)
    sub = Subscriber(broker.port, "soundsentry/kitchen/events")
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url)
    sub.wait(lambda: len(sub.on("soundsentry/kitchen/events")) >= 2, 30, "the first events")
    broker.stop()
    time.sleep(10.0)
    assert spooled(tmp_path / "state") >= 2  # what happened meanwhile waits on disk
    broker.start()
    code, _, err = finish(proc, sig=None)
    assert code == 0, err
    sub.wait(lambda: len(sub.on("soundsentry/kitchen/events")) >= 2 * len(truth), 20, "every event")
    messages, repeats = in_order_without_repeats(sub.events("soundsentry/kitchen/events"))
    synth.check_against_truth(messages, truth)
    assert [m["stream_start_s"] for m in messages if m["type"] == "start"] == sorted(
        m["stream_start_s"] for m in messages if m["type"] == "start")
    print(f"outage: {len(messages)} messages, {repeats} delivered twice")
    assert "lost the connection" in err and err.count("lost the connection") == 1
    sub.close()


def test_events_spooled_before_sigkill_arrive_after_restart(tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    truth = synth.write_scene(scene, seconds=12.0)
    mosquitto = Mosquitto(tmp_path)  # configured, not started: nothing listens on its port yet
    proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", mosquitto.url)
    wait_until(lambda: spooled(tmp_path / "state") >= 3, 30,
               "three events spooled")
    _, _, err = finish(proc, signal.SIGKILL)
    assert "nothing accepts connections" in err
    waiting = spooled(tmp_path / "state")
    mosquitto.start()
    try:
        sub = Subscriber(mosquitto.port, "soundsentry/kitchen/events")
        silence = tmp_path / "silence.wav"
        synth.write_scene(silence, seconds=2.0, events=())
        code, _, err = finish(start_daemon(tone_bundle, silence, tmp_path / "state", "--mqtt", mosquitto.url,
                                           fast=True), sig=None)
        assert code == 0, err
        sub.wait(lambda: len(sub.on("soundsentry/kitchen/events")) >= waiting, 20, "the spooled events")
        messages, repeats = in_order_without_repeats(sub.events("soundsentry/kitchen/events"))
        assert repeats == 0 and len(messages) == waiting
        starts = [m["label"] for m in messages if m["type"] == "start"]
        assert starts == [label for label, _, _ in truth][: len(starts)]
        assert spooled(tmp_path / "state") == 0
        sub.close()
    finally:
        mosquitto.stop()


def test_refused_credentials_back_off_and_deliver_once_fixed(tmp_path, tone_bundle):
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "alice", "right-one"], check=True)
    os.chmod(passwords, 0o600)
    mosquitto = Mosquitto(tmp_path, f"allow_anonymous false\npassword_file {passwords}")
    mosquitto.start()
    try:
        scene = tmp_path / "scene.wav"
        truth = synth.write_scene(scene, seconds=12.0)
        secret = tmp_path / "secret"
        secret.write_text("wrong-one\n")
        proc = start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", f"mqtt://alice@127.0.0.1:{mosquitto.port}",
                            debug=True, config=f"password_file = '{secret}'\n")
        wait_until(lambda: spooled(tmp_path / "state") >= 2,
                   30, "events spooled while refused")
        # The broker's account is mended: alice's password becomes what the daemon has.
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), "alice", "wrong-one"], check=True)
        mosquitto.reload()
        code, _, err = finish(proc, sig=None)
        assert code == 0, err
        refusals = [line for line in err.splitlines() if "refused the connection" in line]
        assert refusals and "not authori" in refusals[0].lower()
        assert sum(1 for line in refusals if line.startswith("WARNING")) == 1  # said once, then at DEBUG
        assert len(refusals) <= 15  # backoff: a handful of tries in ~10 s, not a tight loop
        assert "wrong-one" not in err
        assert f"MQTT: {2 * len(truth)} events delivered, 0 waiting in the spool" in err
    finally:
        mosquitto.stop()


def test_tls_demanded_without_tls_is_named_and_mqtts_delivers(tmp_path, tone_bundle):
    ca, cert, key = make_tls(tmp_path)
    mosquitto = Mosquitto(tmp_path, f"cafile {ca}\ncertfile {cert}\nkeyfile {key}")
    mosquitto.start()
    try:
        scene = tmp_path / "scene.wav"
        truth = synth.write_scene(scene, seconds=6.0, events=(("chirp", 2.0),))
        code, _, err = finish(start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", mosquitto.url,
                                           debug=True, fast=True), sig=None)
        assert "closed the connection before accepting it (does it want TLS" in err
        assert spooled(tmp_path / "state") == 2
        tls_url = f"mqtts://127.0.0.1:{mosquitto.port}"
        code, _, err = finish(start_daemon(tone_bundle, scene, tmp_path / "other", "--mqtt", tls_url, fast=True), sig=None)
        assert "TLS handshake with mqtts://" in err and "certificate" in err  # the system's CAs do not know ours
        silence = tmp_path / "silence.wav"
        synth.write_scene(silence, seconds=1.0, events=())
        code, _, err = finish(start_daemon(tone_bundle, silence, tmp_path / "state", "--mqtt", tls_url, fast=True,
                                           config=f"ca_file = '{ca}'\n"), sig=None)
        assert code == 0 and "connected to mqtts://" in err, err
        assert f"MQTT: {2 * len(truth)} events delivered, 0 waiting in the spool" in err
    finally:
        mosquitto.stop()


@pytest.mark.parametrize("config, message", [
    ("url = 'http://broker'\n", "url 'http://broker' is not mqtt://"),
    ("url = 'mqtt://u:pw@h'\nprefix = 'a/+/b'\n", "prefix 'a/+/b' must be topic levels"),
    ("url = 'mqtt://u@h'\npassword_file = '/nonexistent/pw'\n", "mqtt.password_file: /nonexistent/pw: no such file"),
    ("url = 'mqtts://h'\nca_file = '/nonexistent/ca.pem'\n", "mqtt.ca_file: /nonexistent/ca.pem: no such file"),
    ("url = 'mqtt://h'\nalert_labels = ['siren']\n", "mqtt.alert_labels: 'siren' is not a label the daemon listens to"),
])
def test_bad_mqtt_settings_are_named(tone_bundle, tmp_path, config, message):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=2.0, events=())
    code, out, err = finish(start_daemon(tone_bundle, scene, tmp_path / "state", fast=True, config=config), sig=None)
    assert code == 2 and out == ""
    assert message in err.strip().splitlines()[-1]
    assert "pw@" not in err


def test_watch_shows_devices_events_and_status(broker, tone_bundle, tmp_path):
    scene = tmp_path / "scene.wav"
    synth.write_scene(scene, seconds=6.0, events=(("chirp", 2.0),))
    code, _, err = finish(start_daemon(tone_bundle, scene, tmp_path / "state", "--mqtt", broker.url, fast=True),
                          sig=None)
    assert code == 0, err
    # Started with SIGINT ignored, as a shell's `cmd &` starts it (and as CI ran it): Ctrl-C must still stop it.
    watch = subprocess.Popen([sys.executable, "-m", "soundsentry.device.cli", "watch", "--mqtt", broker.url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    time.sleep(1.5)  # the retained availability and status arrive at once
    sub = Subscriber(broker.port)
    sub.client.publish("soundsentry/kitchen/events", json.dumps(
        {"type": "start", "label": "chirp", "score": 0.93, "dbfs": -18.0, "start": "2026-11-22T10:00:00.000Z"}), qos=1)
    time.sleep(1.0)
    code, out, _ = finish(watch, signal.SIGINT, timeout=10)
    sub.close()
    assert code == 0
    lines = out.splitlines()
    assert any("kitchen" in line and line.endswith("offline") for line in lines), out
    assert any("status: up" in line and "file:" in line and "model tones test" in line for line in lines), out
    assert any("> chirp  score 0.93  -18 dBFS" in line for line in lines), out
    refused = subprocess.run([sys.executable, "-m", "soundsentry.device.cli", "watch", "--mqtt",
                              f"mqtt://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "cannot connect to mqtt://127.0.0.1:" in refused.stderr


def test_example_config_loads_and_fits_the_default_model():
    from soundsentry.device.classifier import open_model
    from soundsentry.device.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "deploy" / "config.toml")
    bundle = open_model(None).bundle
    config.events.check_labels(bundle.labels)
    listened = config.events.listened(bundle.labels, bundle.background_labels)
    assert set(config.mqtt.alert_labels) <= set(listened) and config.mqtt.url.startswith("mqtt://")
