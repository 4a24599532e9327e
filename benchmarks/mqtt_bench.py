"""MQTT figures for BENCHMARKS.md: latency to the broker, spool drain rate, and the sink's cost.

    python benchmarks/mqtt_bench.py [--model BUNDLE] [--backlog 5000]

In one run, against Debian's mosquitto on a loopback port:
- the demo scene in real time, once with the stdout sink and once with MQTT: CPU, peak RSS, and each
  sound's onset -> its `start` message (read from stdout / received by a subscriber at the broker);
- a backlog of spooled events (as after an outage) drained by the daemon, against a plain paho client
  publishing the same messages with the same QoS and in-flight window (the reference).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import Mosquitto, Subscriber  # noqa: E402
from daemon_bench import CLI, child_usage, summary  # noqa: E402

from soundsentry.device.mqtt import INFLIGHT  # noqa: E402
from soundsentry.device.sources import demo_scene_path  # noqa: E402
from soundsentry.device.spool import Spool  # noqa: E402


def mqtt_run(cmd: list[str], sub: Subscriber, topic: str, truth: list[dict]) -> dict:
    """A daemon run whose start messages are timed where they arrive: at a subscriber of the broker."""
    run = child_usage(cmd)
    time.sleep(1.0)
    run["lines"]["out"] = [(t, p.decode()) for t, tp, p, _ in sub.messages if tp == topic]
    return summary(run, truth)


def drain(mosquitto: Mosquitto, tmp: Path, n: int, model: list[str]) -> dict:
    """n spooled events delivered by the daemon, against a bare paho client sending the same n."""
    payload = json.dumps({"schema": 1, "type": "start", "id": "0" * 32, "label": "dog", "score": 0.9,
                          "padding": "x" * 300})
    spool = Spool(tmp / "state" / "spool.sqlite", max_items=n)
    for _ in range(n):
        spool.put("bench/spooled/events", payload)
    spool.close()
    sub = Subscriber(mosquitto.port, "bench/#")
    silence = tmp / "silence.wav"
    sf.write(silence, np.zeros(16000 * 60, np.float32), 16000)
    proc = subprocess.Popen([*CLI, "run", "--source", f"file:{silence}", "--mqtt", mosquitto.url, "--state-dir",
                             str(tmp / "state"), *model], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub.wait(lambda: len(sub.on("bench/spooled/events")) >= n, 300, "the backlog")
    proc.terminate()
    proc.wait(30)
    times = [t for t, tp, _, _ in sub.messages if tp == "bench/spooled/events"]
    daemon_rate = (n - 1) / (times[-1] - times[0])

    ref = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-reference")
    ref.max_inflight_messages_set(INFLIGHT)
    ref.connect("127.0.0.1", mosquitto.port)
    ref.loop_start()
    infos = [ref.publish("bench/reference/events", payload, qos=1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(60)
    sub.wait(lambda: len(sub.on("bench/reference/events")) >= n, 300, "the reference messages")
    ref.loop_stop()
    ref.disconnect()
    times = [t for t, tp, _, _ in sub.messages if tp == "bench/reference/events"]
    reference_rate = (n - 1) / (times[-1] - times[0])
    sub.close()
    return {"events": n, "daemon_events_per_s": round(daemon_rate), "reference_paho_events_per_s": round(reference_rate),
            "daemon_over_reference": round(daemon_rate / reference_rate, 3),
            "first_to_last_s": round((n - 1) / daemon_rate, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundle (default: the shipped one)")
    parser.add_argument("--backlog", type=int, default=5000, help="spooled events to drain")
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    scene = demo_scene_path()
    truth = json.loads(scene.with_name("demo.json").read_text())["events"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "broker").mkdir()
        mosquitto = Mosquitto(tmp / "broker", "max_queued_messages 0")  # the subscriber must not lose the backlog
        mosquitto.start()
        try:
            report: dict = {"scene": str(scene), "scene_s": sf.info(scene).duration}
            report["stdout"] = summary(child_usage([*CLI, "run", "--source", f"file:{scene}", *model]), truth)
            sub = Subscriber(mosquitto.port, "soundsentry/bench/#")
            report["mqtt"] = mqtt_run([*CLI, "run", "--source", f"file:{scene}", "--mqtt", mosquitto.url,
                                       "--device-id", "bench", "--state-dir", str(tmp / "run-state"), *model],
                                      sub, "soundsentry/bench/events", truth)
            sub.close()
            report["drain"] = drain(mosquitto, tmp, args.backlog, model)
        finally:
            mosquitto.stop()
    s, m = report["stdout"], report["mqtt"]
    report["ratios"] = {
        "mqtt_cpu_over_stdout": m["cpu_percent_of_one_core"] / s["cpu_percent_of_one_core"],
        "mqtt_steady_cpu_over_stdout": m["steady_cpu_percent_of_one_core"] / s["steady_cpu_percent_of_one_core"],
        "mqtt_rss_over_stdout": m["peak_rss_mb"] / s["peak_rss_mb"],
        "mqtt_latency_median_minus_stdout_s": m["onset_to_start_message_s"]["median"] - s["onset_to_start_message_s"]["median"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
