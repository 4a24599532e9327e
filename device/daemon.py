"""`soundsentry run`: a source, the pipeline and a sink, with signals for stop and reload.

SIGTERM/SIGINT stop capture, flush open events and exit 0; SIGHUP re-reads the config and the model
without ending the process. Handlers only set flags: the loop acts on them between blocks.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable

from .classifier import Classifier, open_model
from .config import Config
from .errors import SoundsentryError
from .events import EventDetector, StreamClock
from .pipeline import Pipeline
from .sources import Source, make_source

log = logging.getLogger("soundsentry.daemon")


class StdoutSink:
    """Events as JSON lines on stdout; a one-line summary on stderr when a person is watching."""

    def __init__(self, stream=None, summary=None) -> None:
        self.stream = stream or sys.stdout
        self.summary = sys.stderr.isatty() if summary is None else summary

    def event(self, message: dict) -> None:
        self.stream.write(json.dumps(message) + "\n")
        self.stream.flush()
        if self.summary:
            if message["type"] == "start":
                print(f"> {message['label']} started at {message['stream_start_s']:.1f} s "
                      f"(score {message['score']:.2f}, {message['dbfs']:.0f} dBFS)", file=sys.stderr)
            else:
                print(f"  {message['label']} ended after {message['duration_s']:.1f} s "
                      f"(peak {message['score']:.2f})", file=sys.stderr)

    def configure(self, labels: tuple[str, ...], listened: list[str], model: dict) -> None:
        """Nothing to announce on stdout: the MQTT sink sends discovery here."""

    def windows(self, scored: list) -> None:
        """Levels and scores are for MQTT only."""

    def close(self) -> None:
        self.stream.flush()


def model_info(classifier: Classifier) -> dict:
    b = classifier.bundle
    return {"name": b.name, "version": b.version, "sha256": b.sha256}


def make_sink(config: Config, stats: Callable[[], dict]):
    """MQTT when a broker is configured, else JSON lines on stdout."""
    if not config.mqtt.url:
        return StdoutSink()
    from .mqtt import MqttSink

    return MqttSink(config, stats)


class Daemon:
    """Runs until the source ends or a signal stops it; `load` returns a fresh Config on SIGHUP."""

    def __init__(self, load: Callable[[], Config], sink=None) -> None:
        self.load = load
        self.sink = sink
        self._stop = False
        self._reload = False
        self.started = time.monotonic()
        self.first_window_s: float | None = None
        self.busy_s = 0.0
        self._source: Source | None = None
        self._pipeline: Pipeline | None = None
        self._buffer = None

    def stats(self) -> dict:
        """Counters for the MQTT status message (read from the network thread)."""
        source, pipeline, buffer = self._source, self._pipeline, self._buffer
        return {"source": source.description if source else None, "rate": source.rate if source else None,
                "windows": pipeline.windows if pipeline else 0, "gated": pipeline.gated if pipeline else 0,
                "audio_s": pipeline.position_s if pipeline else 0.0, "busy_s": self.busy_s,
                "blocks_dropped": buffer.dropped_blocks if buffer else 0}

    def _signal(self, signum, _frame) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stop = True

    def _build(self, config: Config, source: Source, clock: StreamClock, start_s: float = 0.0) -> Pipeline:
        classifier = open_model(config.model or None, num_threads=config.threads)
        detector = EventDetector(classifier.labels, config.events, device_id=config.resolved_device_id,
                                 model=model_info(classifier), clock=clock,
                                 background=classifier.bundle.background_labels)
        log.info("model %s %s (%d labels, window %.2f s, hop %.2f s)", classifier.bundle.name,
                 classifier.bundle.version, len(classifier.labels), classifier.bundle.window_s, classifier.bundle.hop_s)
        self.sink.configure(classifier.labels, config.events.listened(classifier.labels, classifier.bundle.background_labels),
                            model_info(classifier))
        return Pipeline(classifier, detector, source.rate, config.gate_dbfs if config.gate else None, start_s=start_s)

    def run(self, config: Config) -> int:
        source = self._source = make_source(config.source)
        if self.sink is None:
            self.sink = make_sink(config, self.stats)
        try:
            pipeline = self._pipeline = self._build(config, source, StreamClock(time.time()))
        except SoundsentryError:
            self.sink.close()
            raise
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._signal)
        buffer = self._buffer = source.start()
        log.info("listening to %s at %d Hz", source.description, source.rate)
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    pipeline = self._pipeline = self._reload_pipeline(pipeline, source)
                block, gap = buffer.get(timeout=0.25)
                if gap:
                    log.warning("%.2f s of audio lost (dropped or not captured)", gap / source.rate)
                    self._emit(pipeline.skip(gap))
                if block is None:
                    if source.finished.is_set() and buffer.closed:
                        break
                    continue
                if pipeline.samples_in == 0:  # stream second 0 is when the first block began
                    pipeline.detector.clock = StreamClock(time.time() - len(block) / source.rate)
                began = time.perf_counter()
                scored, messages = pipeline.push(block)
                self.busy_s += time.perf_counter() - began
                self.sink.windows(scored)
                if scored and self.first_window_s is None:
                    self.first_window_s = time.monotonic() - self.started
                    log.info("first window classified %.3f s after start", self.first_window_s)
                self._emit(messages)
        finally:
            source.stop()
            _, messages = pipeline.finish()
            self._emit(messages)
            self.sink.close()
        if source.error is not None:
            log.error("%s", source.error)
            return 1
        log.info("stopped: %d windows classified, %d gated, %.1f s of audio, %d blocks dropped",
                 pipeline.windows - pipeline.gated, pipeline.gated, pipeline.position_s, buffer.dropped_blocks)
        return 0

    def _reload_pipeline(self, pipeline: Pipeline, source: Source) -> Pipeline:
        try:
            config = self.load()
            fresh = self._build(config, source, pipeline.detector.clock, start_s=pipeline.position_s)
        except SoundsentryError as exc:
            log.error("reload failed, keeping the running config and model: %s", exc)
            return pipeline
        self._emit(pipeline.detector.flush(pipeline.position_s))
        log.info("reloaded config and model")
        return fresh

    def _emit(self, messages: list[dict]) -> None:
        for message in messages:
            self.sink.event(message)

