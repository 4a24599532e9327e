"""The MQTT sink: events through an on-disk spool to the broker, with availability, status, level, scores
and Home Assistant discovery.

The audio thread only writes the spool and notes levels and scores; one thread of this module's own owns
the paho client, the connection (backoff with jitter) and everything sent. Events leave the spool in order
and are deleted when the broker acknowledges them (QoS 1); after a reconnect paho re-sends what was in
flight before anything newer goes out, so order holds across outages.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho

from .config import Broker, Config, MqttConfig
from .discovery import SCHEMA, Topics, discovery_configs
from .errors import UsageError
from .events import iso
from .spool import Spool
from .version import package_version

log = logging.getLogger("soundsentry.mqtt")

INFLIGHT = 20  # unacknowledged events at once (paho's own default window)
LOOP_S = 0.02  # the network thread's select timeout: bounds the delay from spool to socket
DRAIN_S = 5.0  # on shutdown, how long to keep trying to empty the spool


def rss_mb() -> float:
    """Resident memory of this process now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Observed:
    """Levels and scores of the windows since the last level / scores message, from the audio thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._power, self._count, self._peak = 0.0, 0, -np.inf
        self._scores: np.ndarray | None = None

    def add(self, scored: list) -> None:
        with self._lock:
            for s in scored:
                self._power += 10 ** (s.level / 10)
                self._count += 1
                self._peak = max(self._peak, s.peak)
                if s.scores is not None:
                    self._scores = s.scores.copy() if self._scores is None else np.maximum(self._scores, s.scores)

    def take_level(self) -> dict | None:
        """Power mean of the window levels and the highest peak, in dBFS; None when no window arrived."""
        with self._lock:
            if not self._count:
                return None
            level = {"dbfs": round(10 * np.log10(self._power / self._count), 1), "peak_dbfs": round(self._peak, 1),
                     "windows": self._count}
            self._power, self._count, self._peak = 0.0, 0, -np.inf
            return level

    def take_scores(self) -> np.ndarray | None:
        """Each label's highest score since the last call; None when every window was gated."""
        with self._lock:
            scores, self._scores = self._scores, None
            return scores


def check_file(key: str, path: str) -> str | None:
    if not path:
        return None
    if not Path(path).is_file():
        raise UsageError(f"mqtt.{key}: {path}: no such file")
    return path


def new_client(mqtt: MqttConfig, broker: Broker, client_id: str) -> paho.Client:
    """A paho client with the broker's credentials and, for mqtts, TLS from the config's files."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=check_file("ca_file", mqtt.ca_file), certfile=check_file("cert_file", mqtt.cert_file),
                       keyfile=check_file("key_file", mqtt.key_file))
    return client


class MqttSink:
    """`sink.event(message)` from the audio thread; `sink.close()` drains, says offline and disconnects."""

    def __init__(self, config: Config, stats: Callable[[], dict]) -> None:
        self.config, self.mqtt, self._stats = config, config.mqtt, stats
        self.broker = config.mqtt.broker()
        if self.broker.password and not self.broker.username:
            raise UsageError("mqtt.url: a password needs a user name (mqtt://USER@HOST)")
        self.where = self.broker.redacted()
        self.topics = Topics.under(self.mqtt.prefix, config.resolved_device_id)
        spool_path = config.resolved_state_dir / "spool.sqlite"
        self._spool_in = Spool(spool_path, self.mqtt.spool_max)
        self._spool_out = Spool(spool_path, self.mqtt.spool_max)
        self._client = self._make_client()
        self.observed = Observed()
        self._labels: tuple[str, ...] = ()
        self._listened: list[str] = []
        self._model: dict = {}
        self._last_event: dict | None = None
        self._started = time.monotonic()
        self._closing = threading.Event()
        self._new = threading.Event()
        self._new.set()  # what an earlier run left in the spool
        self._discovery_due = False
        self._drain_deadline = 0.0
        # Owned by the network thread from here on.
        self._connected = self._connack = False
        self._inflight: dict[int, int] = {}  # paho mid -> spool seq
        self._sent_upto = 0
        self._hold = False
        self._failures, self._failure_kind, self._next_attempt = 0, None, 0.0
        self.attempts = self.delivered = 0
        self._next_status = self._next_level = self._next_scores = 0.0
        self._usage = (time.monotonic(), time.process_time(), 0.0, 0.0)
        log.info("MQTT: %s, topics %s/%s/#, %d events waiting in %s", self.where, self.mqtt.prefix,
                 self.topics.device_id, self._spool_in.depth(), spool_path)
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def _make_client(self) -> paho.Client:
        client = new_client(self.mqtt, self.broker, self.mqtt.client_id or f"soundsentry-{self.topics.device_id}")
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_publish, client.on_message = self._on_publish, self._on_message
        return client

    # The audio thread's side.

    def configure(self, labels: tuple[str, ...], listened: list[str], model: dict) -> None:
        """The running model's labels: checks alert labels and has discovery re-sent (at start and on reload)."""
        for label in self.mqtt.alert_labels:
            if label not in listened:
                raise UsageError(f"mqtt.alert_labels: {label!r} is not a label the daemon listens to")
        self._labels, self._listened, self._model = labels, list(listened), dict(model)
        self._discovery_due = True

    def event(self, message: dict) -> None:
        self._spool_in.put(self.topics.events, json.dumps(message))
        self._new.set()
        self._last_event = {k: message[k] for k in ("type", "id", "label", "score", "start") if k in message}
        log.info("%s %s (score %.2f)", message["label"], "started" if message["type"] == "start" else "ended",
                 message["score"])

    def windows(self, scored: list) -> None:
        self.observed.add(scored)

    def close(self) -> None:
        self._drain_deadline = time.monotonic() + DRAIN_S
        self._closing.set()
        self._thread.join(DRAIN_S + 5.0)
        log.info("MQTT: %d events delivered, %d waiting in the spool", self.delivered, self._spool_in.depth())
        self._spool_in.close()

    # The network thread.

    def _run(self) -> None:
        try:
            while True:
                now = time.monotonic()
                if self._closing.is_set() and (now > self._drain_deadline or not self._pending()):
                    break  # delivered all, or gave up for now: what is left stays in the spool
                if self._client.socket() is None:
                    if now >= self._next_attempt:
                        self._attempt()
                    else:
                        self._closing.wait(min(0.1, self._next_attempt - now))
                    continue
                self._client.loop(timeout=LOOP_S)
                if self._connected:
                    self._send()
            self._goodbye()
        except Exception:  # the daemon goes on listening; the spool keeps the events for the next start
            log.exception("MQTT: the network thread failed")
        finally:
            self._spool_out.close()

    def _pending(self) -> bool:
        return bool(self._inflight) or bool(self._spool_out.after(self._sent_upto, 1))

    def _attempt(self) -> None:
        self.attempts += 1
        self._connack = False
        b = self.broker
        try:
            self._client.connect(b.host, b.port, keepalive=self.mqtt.keepalive_s)
        except ssl.SSLError as exc:
            self._failed("tls", f"TLS handshake with {self.where} failed: "
                                f"{getattr(exc, 'verify_message', None) or exc.reason or exc}")
        except socket.gaierror as exc:
            self._failed("dns", f"cannot resolve {b.host!r}: {exc.strerror}")
        except ConnectionRefusedError:
            self._failed("refused", f"nothing accepts connections at {self.where} (is the broker running?)")
        except OSError as exc:
            self._failed("network", f"cannot reach {self.where}: {exc.strerror or exc}")

    def _failed(self, kind: str, message: str) -> None:
        """Schedule the next try: exponential backoff with jitter; a kind of failure is logged once."""
        self._failures += 1
        base = min(self.mqtt.retry_max_s, self.mqtt.retry_min_s * 2 ** (self._failures - 1))
        delay = base / 2 + random.uniform(0, base / 2)
        self._next_attempt = time.monotonic() + delay
        if kind != self._failure_kind:
            log.warning("MQTT: %s; retrying with backoff (next in %.1f s, at most every %.0f s)", message, delay,
                        self.mqtt.retry_max_s)
        else:
            log.debug("MQTT: %s; next try in %.1f s", message, delay)
        self._failure_kind = kind

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        self._connack = True
        if reason_code.is_failure:
            self._failed(f"refused:{reason_code}", f"{self.where} refused the connection: {reason_code}")
            return
        log.info("MQTT: connected to %s%s", self.where, " again" if self._failure_kind else "")
        self._connected, self._failures, self._failure_kind = True, 0, None
        self._hold = bool(self._inflight)  # paho re-sends these first; newer events wait for their acks
        self._new.set()
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        client.subscribe(f"{self.mqtt.discovery_prefix}/status", qos=1)
        self._discovery_due = True
        self._next_status = 0.0

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        was_connected, self._connected = self._connected, False
        if self._closing.is_set():
            return
        if not self._connack:
            self._failed("closed", f"{self.where} closed the connection before accepting it "
                                   f"(does it want TLS, mqtts://, or is it not an MQTT broker?)")
        elif was_connected:
            self._failed("lost", f"lost the connection to {self.where} ({reason_code})")

    def _on_publish(self, _client, _userdata, mid, _reason_code, _properties) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is not None:
            self._spool_out.remove(seq)
            self.delivered += 1
            self._new.set()
        if not self._inflight:
            self._hold = False

    def _on_message(self, _client, _userdata, message) -> None:
        if message.topic == f"{self.mqtt.discovery_prefix}/status" and message.payload == b"online":
            log.info("MQTT: Home Assistant is online: sending discovery again")
            self._discovery_due = True

    def _send(self) -> None:
        if self._new.is_set() and not self._hold and len(self._inflight) < INFLIGHT:
            self._new.clear()
            for seq, topic, payload in self._spool_out.after(self._sent_upto, INFLIGHT - len(self._inflight)):
                self._inflight[self._client.publish(topic, payload, qos=1).mid] = seq
                self._sent_upto = seq
        if self._discovery_due and self._model:
            self._discovery_due = False
            self._publish_discovery()
        now = time.monotonic()
        if now >= self._next_status and self._model:
            self._next_status = now + self.mqtt.status_interval_s
            self._publish_status()
        if now >= self._next_level:
            self._next_level = now + self.mqtt.level_interval_s
            if (level := self.observed.take_level()) is not None:
                self._client.publish(self.topics.level, json.dumps({"schema": SCHEMA, "time": iso(time.time()), **level}))
        if self.mqtt.scores and now >= self._next_scores:
            self._next_scores = now + self.mqtt.scores_interval_s
            if (scores := self.observed.take_scores()) is not None:
                top = np.argsort(scores)[::-1][: self.mqtt.scores_top_k]
                self._client.publish(self.topics.scores, json.dumps({
                    "schema": SCHEMA, "time": iso(time.time()),
                    "top": [{"label": self._labels[i], "score": round(float(scores[i]), 4)} for i in top]}))

    def _publish_discovery(self) -> None:
        """Current configs, retained; configs this device sent before and no longer has are emptied."""
        configs = discovery_configs(self.topics, discovery_prefix=self.mqtt.discovery_prefix, listened=self._listened,
                                    alert_labels=list(self.mqtt.alert_labels), model=self._model,
                                    sw_version=package_version()) if self.mqtt.discovery else {}
        before = set(json.loads(self._spool_out.get_meta("discovery_topics", "[]")))
        for topic in sorted(before - configs.keys()):
            self._client.publish(topic, b"", qos=1, retain=True)
        for topic, payload in configs.items():
            self._client.publish(topic, json.dumps(payload), qos=1, retain=True)
        self._spool_out.set_meta("discovery_topics", json.dumps(sorted(configs)))

    def _publish_status(self) -> None:
        self._client.publish(self.topics.status, json.dumps(self.status()), retain=True)

    def status(self) -> dict:
        """The retained status message: what a dashboard needs to tell a healthy device from a stuck one."""
        stats = self._stats()
        wall, cpu, busy, audio = time.monotonic(), time.process_time(), stats["busy_s"], stats["audio_s"]
        wall0, cpu0, busy0, audio0 = self._usage
        self._usage = (wall, cpu, busy, audio)
        return {
            "schema": SCHEMA, "device_id": self.topics.device_id, "time": iso(time.time()),
            "version": package_version(), "uptime_s": round(wall - self._started, 1),
            "source": stats["source"], "rate": stats["rate"],
            "rtf": round((busy - busy0) / (audio - audio0), 5) if audio > audio0 else None,
            "cpu_percent": round(100 * (cpu - cpu0) / (wall - wall0), 1) if wall > wall0 else None,
            "rss_mb": round(rss_mb(), 1), "windows": stats["windows"], "gated": stats["gated"],
            "blocks_dropped": stats["blocks_dropped"], "spool_depth": self._spool_out.depth(),
            "spool_dropped": self._spool_out.dropped, "delivered": self.delivered,
            "model": self._model, "last_event": self._last_event,
        }

    def _goodbye(self) -> None:
        """Retained `offline`, then a clean DISCONNECT (so the broker does not send the last will as well)."""
        if not self._connected:
            return
        self._publish_status()  # the retained status then tells how the run ended
        info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline and self._client.socket() is not None:
            self._client.loop(timeout=LOOP_S)
        self._client.disconnect()
        while self._client.socket() is not None and time.monotonic() < deadline + 1.0:
            self._client.loop(timeout=LOOP_S)
