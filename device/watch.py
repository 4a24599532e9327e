"""`soundsentry watch`: what devices publish, live, as lines a person can read (or raw JSON)."""

from __future__ import annotations

import json
import signal
import ssl
import sys
import threading
import uuid
from datetime import datetime
from typing import TextIO

from .config import MqttConfig
from .errors import SoundsentryError
from .mqtt import new_client


def clock(iso_time: str | None) -> str:
    if not iso_time:
        return datetime.now().strftime("%H:%M:%S")
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")


def describe(leaf: str, device: str, payload: bytes) -> str | None:
    """One line for a message on `<prefix>/<device>/<leaf>`; None for messages not shown (level, scores)."""
    if leaf == "availability":
        return f"{clock(None)} {device:16} {payload.decode(errors='replace')}"
    try:
        m = json.loads(payload)
    except ValueError:
        return f"{clock(None)} {device:16} {leaf}: not JSON: {payload[:80]!r}"
    if leaf == "events" and m.get("type") == "start":
        return f"{clock(m.get('start'))} {device:16} > {m['label']}  score {m['score']:.2f}  {m['dbfs']:.0f} dBFS"
    if leaf == "events":
        return f"{clock(m.get('end'))} {device:16}   {m['label']} ended after {m['duration_s']:.1f} s"
    if leaf == "status":
        model = m.get("model") or {}
        rtf = f"{m['rtf']:.4f}" if m.get("rtf") is not None else "-"
        return (f"{clock(m.get('time'))} {device:16} status: up {m['uptime_s'] / 60:.0f} min, {m['source']} "
                f"({m['rate']} Hz), RTF {rtf}, CPU {m.get('cpu_percent')}%, RSS {m['rss_mb']:.0f} MB, "
                f"spool {m['spool_depth']}, model {model.get('name')} {model.get('version')}")
    return None


def watch(mqtt: MqttConfig, device_id: str, *, as_json: bool = False, out: TextIO = sys.stdout) -> None:
    """Subscribe to `<prefix>/<device_id>/#` (device_id may be `+`) and print until SIGINT or SIGTERM."""
    broker = mqtt.broker()
    client = new_client(mqtt, broker, f"soundsentry-watch-{uuid.uuid4().hex[:8]}")
    topic = f"{mqtt.prefix}/{device_id}/#"
    refused: list[str] = []
    done = threading.Event()

    def on_connect(client, _userdata, _flags, reason_code, _properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
            done.set()
        else:
            client.subscribe(topic, qos=1)

    def on_message(_client, _userdata, message):
        levels = message.topic.split("/")
        device, leaf = levels[-2], levels[-1]
        if as_json:
            try:
                payload = json.loads(message.payload)
            except ValueError:
                payload = message.payload.decode(errors="replace")
            print(json.dumps({"topic": message.topic, "retained": bool(message.retain), "payload": payload}),
                  file=out, flush=True)
        elif (line := describe(leaf, device, message.payload)) is not None:
            print(line, file=out, flush=True)

    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(broker.host, broker.port)
    except (OSError, ssl.SSLError) as exc:
        raise SoundsentryError(f"cannot connect to {broker.redacted()}: {getattr(exc, 'strerror', None) or exc}") from None
    if not as_json:
        print(f"watching {topic} on {broker.redacted()} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # Our own handlers, not KeyboardInterrupt: a shell's `cmd &` starts children with SIGINT ignored, and then
    # Python never raises it (watch hung in CI that way). paho runs on its own thread; this one only waits.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    client.loop_start()
    try:
        done.wait()
    finally:
        client.disconnect()
        client.loop_stop()
    if refused:
        raise SoundsentryError(f"{broker.redacted()} refused the connection: {refused[0]}")
