"""MQTT topics and Home Assistant discovery configs: pure functions from the device's settings to payloads.

What Home Assistant gets (schema in README "MQTT"): an `event` entity firing one event type per listened
label when a sound starts, a sensor with the last sound's label, a sound level sensor in dBFS, and one
`binary_sensor` per alert label, on from an event's start to its end. All hang off one device block and
follow the availability topic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields

SCHEMA = 1


@dataclass(frozen=True)
class Topics:
    """Everything one device publishes, under `<prefix>/<device_id>/`."""

    device_id: str
    events: str
    availability: str
    status: str
    scores: str
    level: str

    @classmethod
    def under(cls, prefix: str, device_id: str) -> Topics:
        leaves = [f.name for f in fields(cls) if f.name != "device_id"]
        return cls(device_id=device_id, **{leaf: f"{prefix}/{device_id}/{leaf}" for leaf in leaves})


def safe_id(text: str) -> str:
    """Home Assistant allows only [a-zA-Z0-9_-] in the node and object ids of a discovery topic."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)


def node_id(device_id: str) -> str:
    return "soundsentry_" + safe_id(device_id)


def event_template() -> str:
    """Start messages become `{"event_type": label, ...}`; end messages render empty, which HA ignores."""
    return ("{% if value_json.type == 'start' %}{{ {'event_type': value_json.label, 'id': value_json.id, "
            "'score': value_json.score, 'dbfs': value_json.dbfs} | tojson }}{% endif %}")


def alert_template(label: str) -> str:
    """ON at the label's start message, OFF at its end; other labels' messages render empty (ignored)."""
    return (f"{{% if value_json.label == {json.dumps(label)} %}}{{{{ 'ON' if value_json.type == 'start' else 'OFF' }}}}"
            "{% endif %}")


def discovery_configs(topics: Topics, *, discovery_prefix: str, listened: list[str], alert_labels: list[str],
                      model: dict, sw_version: str) -> dict[str, dict]:
    """Discovery topic -> config payload for every entity of this device."""
    node = node_id(topics.device_id)
    device = {"identifiers": [node], "name": f"soundsentry {topics.device_id}", "manufacturer": "soundsentry",
              "model": f"{model['name']} {model['version']}", "sw_version": sw_version}
    common = {"schema": SCHEMA, "availability_topic": topics.availability, "payload_available": "online",
              "payload_not_available": "offline", "device": device,
              "origin": {"name": "soundsentry", "sw_version": sw_version}}

    def entity(component: str, object_id: str, **config) -> tuple[str, dict]:
        return (f"{discovery_prefix}/{component}/{node}/{object_id}/config",
                {**config, "unique_id": f"{node}_{object_id}", **common})

    configs = dict([
        entity("event", "sound", name="Sound", state_topic=topics.events, event_types=list(listened),
               value_template=event_template(), icon="mdi:ear-hearing"),
        entity("sensor", "last_sound", name="Last sound", state_topic=topics.events,
               value_template="{{ value_json.label }}", icon="mdi:waveform"),
        entity("sensor", "sound_level", name="Sound level", state_topic=topics.level,
               value_template="{{ value_json.dbfs }}", unit_of_measurement="dBFS", state_class="measurement",
               icon="mdi:volume-high"),
    ])
    for label in alert_labels:
        configs.update([entity("binary_sensor", f"alert_{safe_id(label)}",
                               name=label.replace("_", " ").capitalize(), state_topic=topics.events,
                               value_template=alert_template(label), payload_on="ON", payload_off="OFF",
                               device_class="sound")])
    return configs
