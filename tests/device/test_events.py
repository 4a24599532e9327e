"""The event state machine on hand-made score sequences: exact, no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from soundsentry.device.errors import UsageError
from soundsentry.device.events import EventDetector, EventsConfig, StreamClock
from soundsentry.device.settings import from_mapping

LABELS = ("dog", "siren", "background")
MODEL = {"name": "m", "version": "1", "sha256": "0" * 64}


def run(config: EventsConfig, dog_scores, hop: float = 0.25, background=("background",)):
    detector = EventDetector(LABELS, config, device_id="dev", model=MODEL, clock=StreamClock(0.0),
                             background=background)
    out = []
    for i, s in enumerate(dog_scores):
        out += detector.update(i * hop, np.array([s, 0.0, 1.0 - s]), -20.0 - i)
    return out + detector.flush(len(dog_scores) * hop)


def test_n_of_m_starts_and_off_windows_end():
    messages = run(EventsConfig(n=2, m=3, off_windows=2), [0.1, 0.9, 0.1, 0.8, 0.9, 0.6, 0.2, 0.1, 0.1])
    assert [m["type"] for m in messages] == ["start", "end"]
    start, end = messages
    assert start["id"] == end["id"] and start["label"] == "dog"
    assert start["stream_start_s"] == 0.25  # centre of the first high window among the n of m
    assert end["stream_end_s"] == 1.25  # the last window at or above off
    assert end["score"] == 0.9 and end["duration_s"] == 1.0
    assert "end" not in start and end["end"] == "1970-01-01T00:00:01.250Z"
    assert start["schema"] == 1 and start["device_id"] == "dev" and start["model"] == MODEL
    assert end["dbfs"] == -20.0 - 1  # the loudest window's peak level


def test_single_high_window_is_not_enough_with_two_of_three():
    assert run(EventsConfig(n=2, m=3), [0.9, 0.1, 0.1, 0.9, 0.1, 0.1]) == []


def test_min_duration_drops_short_events():
    assert run(EventsConfig(n=1, m=1, min_duration_s=1.0), [0.9, 0.9, 0.1, 0.1]) == []
    long = run(EventsConfig(n=1, m=1, min_duration_s=1.0), [0.9] * 6 + [0.1, 0.1])
    assert [m["type"] for m in long] == ["start", "end"]
    assert long[0]["stream_start_s"] == 0.0


def test_cooldown_keeps_the_label_quiet():
    scores = [0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1] + [0.1] * 8 + [0.9, 0.9, 0.1, 0.1]
    messages = run(EventsConfig(n=1, m=1, off_windows=2, cooldown_s=2.0), scores)
    starts = [m["stream_start_s"] for m in messages if m["type"] == "start"]
    assert starts == [0.0, 4.0]  # the burst at 1.0 s falls within 2 s of the first end (0.25 s)


def test_listen_ignore_and_background():
    assert run(EventsConfig(n=1, m=1, ignore=["dog"]), [0.9, 0.9, 0.1, 0.1]) == []
    assert run(EventsConfig(n=1, m=1, listen=["siren"]), [0.9, 0.9, 0.1, 0.1]) == []
    # background scores 1 - dog: high in the quiet stretches, yet never an event
    messages = run(EventsConfig(n=1, m=1), [0.0, 0.0, 0.9, 0.0, 0.0])
    assert {m["label"] for m in messages} == {"dog"}
    noisy = run(EventsConfig(n=1, m=1), [0.0, 0.0], background=())
    assert {m["label"] for m in noisy} == {"background"}


def test_flush_ends_open_events():
    messages = run(EventsConfig(n=1, m=1), [0.9, 0.9, 0.9])
    assert [m["type"] for m in messages] == ["start", "end"]


def test_per_label_override():
    config = from_mapping(EventsConfig, {"on": 0.5, "labels": {"dog": {"on": 0.95, "off": 0.5}}})
    assert run(config, [0.9, 0.9, 0.9, 0.1]) == []
    assert len(run(config, [0.97, 0.97, 0.1, 0.1])) == 2


@pytest.mark.parametrize("data, message", [
    ({"on": 1.5}, "events.on: 1.5 is out of range"),
    ({"on": "high"}, "events.on: must be float"),
    ({"off": 0.9}, r"events: off \(0.9\) must not exceed on"),
    ({"threshold": 0.5}, "events.threshold: unknown key"),
    ({"labels": {"dog": {"n": 5}}}, r"events.labels.dog: n \(5\) must not exceed m"),
])
def test_bad_config_is_named(data, message):
    with pytest.raises(UsageError, match=message):
        from_mapping(EventsConfig, data, prefix="events.")


def test_unknown_label_in_listen_is_named():
    with pytest.raises(UsageError, match="events.listen: 'cat' is not a label"):
        EventDetector(LABELS, EventsConfig(listen=["cat"]), device_id="d", model=MODEL, clock=StreamClock(0))
