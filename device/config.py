"""The daemon's configuration: one dataclass from TOML, overridden by flags, validated at load."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import UsageError
from .events import EventsConfig
from .settings import from_mapping, load_toml, option, to_plain

DEFAULT_CONFIG = Path("/etc/soundsentry/config.toml")


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    name: str = option("mic", help="mic, mic:INDEX, mic:NAME, file:PATH or demo")
    rate: int = option(0, min=0, max=384000, help="capture rate in Hz (0: the device's default)")
    block_s: float = option(0.064, min=0.001, max=2.0, help="seconds of audio per capture block")
    buffer_s: float = option(10.0, min=0.1, max=600.0, help="audio held while the pipeline catches up; "
                             "beyond it the oldest is dropped and counted")
    fast: bool = option(False, help="file sources: as fast as possible instead of real time")
    retry_max_s: float = option(30.0, min=0.1, max=3600.0, help="longest wait between tries to reopen a lost mic")

    def __post_init__(self) -> None:
        if not (self.name in ("mic", "demo") or self.name.startswith(("mic:", "file:"))):
            raise ValueError(f"source {self.name!r} is not mic, mic:INDEX, mic:NAME, file:PATH or demo")


TOPIC_WORD = re.compile(r"[^/+#\x00]+")


@dataclass(frozen=True)
class Broker:
    """Where to connect, parsed from mqtt(s)://[USER[:PASS]@]HOST[:PORT]."""

    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None

    def redacted(self) -> str:
        user = f"{self.username}{':***' if self.password else ''}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker(url: str) -> Broker:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1 or parts.path not in ("", "/"):
        shown = url.replace(f":{parts.password}@", ":***@") if parts.password else url
        raise ValueError(f"url {shown!r} is not mqtt://[USER[:PASS]@]HOST[:PORT] or mqtts://...")
    tls = parts.scheme == "mqtts"
    return Broker(tls, parts.hostname, port or (8883 if tls else 1883), parts.username, parts.password)


@dataclass(frozen=True, kw_only=True)
class MqttConfig:
    """The broker, the topics and Home Assistant discovery; events go to stdout when `url` is empty."""

    url: str = option("", help="mqtt://[USER[:PASS]@]HOST[:PORT] or mqtts://... (empty: events on stdout)")
    password_file: str = option("", help="file holding the broker password (else SOUNDSENTRY_MQTT_PASSWORD)")
    ca_file: str = option("", help="mqtts: CA certificate(s) to trust (empty: the system's)")
    cert_file: str = option("", help="mqtts: client certificate, for brokers that ask for one")
    key_file: str = option("", help="mqtts: the client certificate's private key")
    client_id: str = option("", help="MQTT client id (empty: soundsentry-<device_id>)")
    prefix: str = option("soundsentry", help="topics are <prefix>/<device_id>/...")
    keepalive_s: int = option(30, min=5, max=3600, help="MQTT keepalive; the broker sends the last will after 1.5x")
    status_interval_s: float = option(30.0, min=1.0, max=3600.0, help="seconds between retained status messages")
    level_interval_s: float = option(5.0, min=0.5, max=3600.0, help="seconds between sound level messages")
    scores: bool = option(False, help="publish the top scores of recent windows (for tuning thresholds)")
    scores_interval_s: float = option(1.0, min=0.1, max=3600.0, help="at most one scores message this often")
    scores_top_k: int = option(5, min=1, max=100, help="labels in a scores message")
    discovery: bool = option(True, help="publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = option("homeassistant", help="Home Assistant's discovery prefix")
    alert_labels: list[str] = option([], help="labels that get a Home Assistant binary_sensor (on while sounding)")
    spool_max: int = option(10000, min=1, max=10_000_000, help="events kept on disk while the broker is away; "
                            "beyond it the oldest are dropped and counted")
    retry_min_s: float = option(0.5, min=0.05, max=3600.0, help="first wait before reconnecting")
    retry_max_s: float = option(30.0, min=0.1, max=3600.0, help="longest wait between reconnects")

    def __post_init__(self) -> None:
        if self.url:
            parse_broker(self.url)
        for key in ("prefix", "discovery_prefix"):
            if not all(TOPIC_WORD.fullmatch(w) for w in getattr(self, key).split("/")):
                raise ValueError(f"{key} {getattr(self, key)!r} must be topic levels without +, # or empty levels")
        if self.retry_min_s > self.retry_max_s:
            raise ValueError(f"retry_min_s ({self.retry_min_s}) must not exceed retry_max_s ({self.retry_max_s})")

    def broker(self, environ=os.environ) -> Broker:
        """The parsed URL, its password from the URL, else `password_file`, else the environment."""
        broker = parse_broker(self.url)
        if broker.password is None and self.password_file:
            try:
                password = Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise UsageError(f"mqtt.password_file: {self.password_file}: {exc.strerror.lower()}") from None
            broker = replace(broker, password=password)
        elif broker.password is None and environ.get("SOUNDSENTRY_MQTT_PASSWORD"):
            broker = replace(broker, password=environ["SOUNDSENTRY_MQTT_PASSWORD"])
        return broker

    def redacted(self) -> "MqttConfig":
        """This config with the URL's password hidden, for printing."""
        return replace(self, url=parse_broker(self.url).redacted()) if self.url and urlsplit(self.url).password else self


def default_state_dir() -> Path:
    """systemd's StateDirectory= when set, else ~/.local/state/soundsentry."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "soundsentry"


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything `soundsentry run` needs; `--print-config` prints it back as TOML."""

    model: str = option("", help="model bundle (empty: the one shipped in the package)")
    device_id: str = option("", help="name of this device in events and topics (empty: the hostname)")
    gate: bool = option(False, help="skip inference while the sound level is below gate_dbfs")
    gate_dbfs: float = option(-60.0, min=-140.0, max=0.0, help="loudness gate floor in dBFS")
    threads: int = option(1, min=1, max=64, help="interpreter threads")
    log_level: str = option("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    state_dir: str = option("", help="where the MQTT event spool lives (empty: $STATE_DIRECTORY or "
                            "~/.local/state/soundsentry)")
    source: SourceConfig = field(default_factory=SourceConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)

    def __post_init__(self) -> None:
        if self.device_id and not TOPIC_WORD.fullmatch(self.device_id):
            raise ValueError(f"device_id {self.device_id!r} must not contain /, + or #")

    @property
    def resolved_device_id(self) -> str:
        return self.device_id or socket.gethostname()

    @property
    def resolved_state_dir(self) -> Path:
        return Path(self.state_dir) if self.state_dir else default_state_dir()


def load_config(path: str | Path | None, overrides: dict | None = None) -> Config:
    """The default config file when present (or `path`), then command-line overrides (dotted keys)."""
    data: dict = {}
    if path is not None:
        data = load_toml(path)
    elif DEFAULT_CONFIG.is_file():
        data = load_toml(DEFAULT_CONFIG)
    where = str(path or DEFAULT_CONFIG)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    try:
        return from_mapping(Config, data)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}" if data and path is not None else str(exc)) from None


def config_toml(config: Config) -> str:
    import tomli_w

    return tomli_w.dumps(to_plain(replace(config, mqtt=config.mqtt.redacted())))

