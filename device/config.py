"""The daemon's configuration: one dataclass from TOML, overridden by flags, validated at load."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything `soundsentry run` needs; `--print-config` prints it back as TOML."""

    model: str = option("", help="model bundle (empty: the one shipped in the package)")
    device_id: str = option("", help="name of this device in events and topics (empty: the hostname)")
    gate: bool = option(False, help="skip inference while the sound level is below gate_dbfs")
    gate_dbfs: float = option(-60.0, min=-140.0, max=0.0, help="loudness gate floor in dBFS")
    threads: int = option(1, min=1, max=64, help="interpreter threads")
    log_level: str = option("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    source: SourceConfig = field(default_factory=SourceConfig)
    events: EventsConfig = field(default_factory=EventsConfig)

    @property
    def resolved_device_id(self) -> str:
        return self.device_id or socket.gethostname()


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

    return tomli_w.dumps(to_plain(config))

