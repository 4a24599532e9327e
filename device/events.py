"""Sound events from window scores: a pure state machine per label, no clock and no I/O.

A label starts an event when `n` of its last `m` windows score at least `on` and it has lasted
`min_duration_s`; the event ends after `off_windows` windows in a row below `off`; after an end the
label rests for `cooldown_s`. Event times are the centres of the first and last windows that scored
above the thresholds, in seconds from the start of the stream.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

from .errors import UsageError
from .settings import from_mapping, option

SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class Rule:
    """When one label's scores make an event."""

    on: float = option(0.7, min=0.0, max=1.0, help="score that starts an event")
    off: float = option(0.3, min=0.0, max=1.0, help="score below which an event ends (at most `on`)")
    n: int = option(1, min=1, max=100, help="windows at or above `on`, among the last `m`, to start")
    m: int = option(1, min=1, max=100, help="windows looked at for the start (at least `n`)")
    off_windows: int = option(2, min=1, max=100, help="windows below `off` in a row that end an event")
    min_duration_s: float = option(0.0, min=0.0, max=600.0, help="events shorter than this are not reported")
    cooldown_s: float = option(2.0, min=0.0, max=3600.0, help="rest after an event before the label may start again")

    def __post_init__(self) -> None:
        if self.off > self.on:
            raise ValueError(f"off ({self.off}) must not exceed on ({self.on})")
        if self.n > self.m:
            raise ValueError(f"n ({self.n}) must not exceed m ({self.m})")


@dataclass(frozen=True, kw_only=True)
class EventsConfig(Rule):
    """The default rule (the inherited fields), per-label overrides, and which labels make events."""

    listen: list[str] = option([], help="labels that make events (empty: all)")
    ignore: list[str] = option([], help="labels that never make events")
    labels: dict[str, dict] = option({}, help="per-label overrides of on, off, n, m, ...")

    def rule_for(self, label: str) -> Rule:
        base = {f.name: getattr(self, f.name) for f in fields(Rule)}
        return from_mapping(Rule, {**base, **self.labels.get(label, {})}, prefix=f"events.labels.{label}.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for label in self.labels:
            self.rule_for(label)

    def check_labels(self, known: tuple[str, ...]) -> None:
        """Name a listened, ignored or overridden label the model does not have."""
        for key, names in (("listen", self.listen), ("ignore", self.ignore), ("labels", list(self.labels))):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise UsageError(f"events.{key}: {unknown[0]!r} is not a label of the model")

    def listened(self, known: tuple[str, ...], background: tuple[str, ...] = ()) -> list[str]:
        """Labels that make events: the listen list (or all), less the ignored and the background ones."""
        return [label for label in known if (not self.listen or label in self.listen)
                and label not in self.ignore and label not in background]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Active:
    id: str
    start_s: float
    last_high_s: float
    peak: float
    total: float
    count: int
    dbfs: float
    announced: bool = False


@dataclass
class _LabelState:
    rule: Rule
    recent: deque = field(default_factory=deque)
    active: _Active | None = None
    below: int = 0
    rest_until: float = float("-inf")


@dataclass(frozen=True)
class StreamClock:
    """Maps seconds of stream to wall-clock time: `origin` is the epoch time of stream second 0."""

    origin: float

    def wall(self, stream_s: float) -> str:
        return iso(self.origin + stream_s)


class EventDetector:
    """`messages = detector.update(t, scores, dbfs)`: start and end messages as plain dicts."""

    def __init__(self, labels: tuple[str, ...], config: EventsConfig, *, device_id: str, model: dict,
                 clock: StreamClock, background: tuple[str, ...] = ()) -> None:
        config.check_labels(labels)
        self.labels, self.device_id, self.model, self.clock = labels, device_id, model, clock
        listened = config.listened(labels, background)
        self._states = {i: _LabelState(config.rule_for(label)) for i, label in enumerate(labels) if label in listened}
        self.last_event: dict | None = None

    def update(self, t: float, scores, dbfs: float) -> list[dict]:
        """Feed one window: `t` its centre in stream seconds, `scores` per label, `dbfs` its peak level."""
        out = []
        for i, state in self._states.items():
            rule, score = state.rule, float(scores[i])
            state.recent.append((t, score, dbfs))
            while len(state.recent) > rule.m:
                state.recent.popleft()
            active = state.active
            if active is None:
                high = [s for s in state.recent if s[1] >= rule.on]
                if len(high) >= rule.n and t >= state.rest_until:
                    active = state.active = _Active(uuid.uuid4().hex, high[0][0], t, max(s for _, s, _ in high),
                                                    sum(s for _, s, _ in high), len(high), max(d for _, _, d in high))
                    state.below = 0
            else:
                active.count += 1
                active.total += score
                active.peak = max(active.peak, score)
                active.dbfs = max(active.dbfs, dbfs)
                if score >= rule.off:
                    active.last_high_s, state.below = t, 0
                else:
                    state.below += 1
            if active is None:
                continue
            if not active.announced and active.last_high_s - active.start_s >= rule.min_duration_s:
                active.announced = True
                out.append(self._message("start", i, active))
            if state.below >= rule.off_windows:
                out += self._close(i, state, t)
        return out

    def flush(self, t: float) -> list[dict]:
        """End every open event (end of stream, shutdown)."""
        out = []
        for i, state in self._states.items():
            if state.active is not None:
                out += self._close(i, state, t)
        return out

    def _close(self, i: int, state: _LabelState, t: float) -> list[dict]:
        active, state.active = state.active, None
        state.recent.clear()
        state.below = 0
        if not active.announced:
            return []
        state.rest_until = active.last_high_s + state.rule.cooldown_s
        message = self._message("end", i, active)
        self.last_event = message
        return [message]

    def _message(self, kind: str, i: int, a: _Active) -> dict:
        message = {
            "schema": SCHEMA, "type": kind, "id": a.id, "device_id": self.device_id, "label": self.labels[i],
            "score": round(a.peak, 4), "mean_score": round(a.total / max(a.count, 1), 4),
            "start": self.clock.wall(a.start_s), "stream_start_s": round(a.start_s, 3),
            "dbfs": round(a.dbfs, 1), "model": self.model,
        }
        if kind == "end":
            message.update(end=self.clock.wall(a.last_high_s), stream_end_s=round(a.last_high_s, 3),
                           duration_s=round(a.last_high_s - a.start_s, 3))
        return message
