"""The `soundsentry` command: thin argument parsing over typed core functions.

Subcommands that need training tools (train, evaluate, convert, bench) are found through the
`soundsentry.commands` entry points, so this module never imports soundsentry.train or .convert.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import entry_points

from .errors import SoundsentryError, UsageError
from .version import package_version

COMMANDS_GROUP = "soundsentry.commands"
log = logging.getLogger("soundsentry.cli")


def emit_json(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def cmd_classify(args: argparse.Namespace) -> int:
    from .classifier import open_model
    from .classify import score_file, top_k

    classifier = open_model(args.model)
    failed = 0
    for path in args.paths:
        try:
            scores = score_file(classifier, path)
        except SoundsentryError as exc:
            failed += 1
            if args.json:
                emit_json({"path": path, "error": str(exc)})
            else:
                print(f"soundsentry classify: {exc}", file=sys.stderr, flush=True)
            continue
        top = top_k(classifier.labels, scores, args.top)
        if args.json:
            emit_json({"path": path, "top": top})
        else:
            print(f"{path}: " + ", ".join(f"{t['label']} {t['score']:.3f}" for t in top), flush=True)
    return 1 if failed else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .classifier import open_model

    classifier = open_model(args.bundle)
    info = classifier.bundle.summary()
    info["selftest_max_diff"] = round(classifier.self_test(), 6)
    if args.json:
        emit_json(info)
        return 0
    for key in ("path", "name", "version", "created", "sha256", "size_bytes", "input_dtype", "output_dtype",
                "sample_rate", "window_s", "hop_s", "signed", "selftest_max_diff"):
        print(f"{key:18} {info[key]}")
    print(f"{'frontend':18} " + ", ".join(f"{k}={v}" for k, v in info["frontend"].items()))
    for key, value in info["provenance"].items():
        print(f"{'provenance.' + key:18} {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    print(f"{'labels':18} ({len(info['labels'])}) " + ", ".join(info["labels"]))
    return 0


RUN_FLAGS = {"source": "source.name", "model": "model", "device_id": "device_id", "rate": "source.rate",
             "fast": "source.fast", "gate_dbfs": "gate_dbfs", "mqtt": "mqtt.url", "state_dir": "state_dir"}


def cmd_run(args: argparse.Namespace) -> int:
    from .config import config_toml, load_config
    from .daemon import Daemon

    overrides = {key: getattr(args, flag) for flag, key in RUN_FLAGS.items() if getattr(args, flag) is not None}
    if args.gate_dbfs is not None:
        overrides["gate"] = True
    config = load_config(args.config, overrides)
    if args.print_config:
        print(config_toml(config), end="")
        return 0
    logging.getLogger().setLevel(config.log_level if args.log_level is None else args.log_level)
    return Daemon(lambda: load_config(args.config, overrides)).run(config)


def cmd_watch(args: argparse.Namespace) -> int:
    from .config import load_config
    from .watch import watch

    config = load_config(args.config, {"mqtt.url": args.mqtt} if args.mqtt else {})
    if not config.mqtt.url:
        raise UsageError("no broker: give --mqtt mqtt://HOST or set mqtt.url in the config")
    watch(config.mqtt, args.device_id, as_json=args.json)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from .sources import list_inputs

    inputs = list_inputs()
    if args.json:
        emit_json({"inputs": inputs})
        return 0
    if not inputs:
        print("no audio inputs found")
    for d in inputs:
        print(f"{d['index']:3}  {d['name']}  ({d['channels']} ch, {d['default_rate']} Hz)")
    return 0


def not_built(what: str):
    def handler(args: argparse.Namespace) -> int:
        print(f"soundsentry {args.command}: not built yet: {what}", file=sys.stderr)
        return 2

    return handler


def register_device_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="classify audio files (WAV, FLAC, OGG) with a model bundle")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle (default: the one shipped in the package)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="how many labels to print (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("inspect", help="show a model bundle: labels, front end, quantization, provenance")
    p.add_argument("bundle", nargs="?", metavar="BUNDLE", help="default: the model shipped in the package")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="listen and emit sound events (the daemon)")
    p.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/soundsentry/config.toml if present)")
    p.add_argument("--source", help="mic, mic:INDEX, mic:NAME, file:PATH or demo")
    p.add_argument("--model", metavar="BUNDLE", help="model bundle (default: the shipped one)")
    p.add_argument("--device-id", help="this device's name in events (default: the hostname)")
    p.add_argument("--rate", type=int, help="capture rate in Hz (default: the device's)")
    p.add_argument("--fast", action="store_true", default=None, help="file sources: as fast as possible")
    p.add_argument("--gate-dbfs", type=float, metavar="DBFS", help="skip inference below this level")
    p.add_argument("--mqtt", metavar="URL", help="publish to mqtt://[USER[:PASS]@]HOST[:PORT] or mqtts://... "
                   "(password better in mqtt.password_file or SOUNDSENTRY_MQTT_PASSWORD)")
    p.add_argument("--state-dir", metavar="DIR", help="where undelivered events are kept (the MQTT spool)")
    p.add_argument("--print-config", action="store_true", help="print the effective config as TOML and exit")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("watch", help="show events and status that devices publish to an MQTT broker, live")
    p.add_argument("--config", metavar="FILE", help="TOML config for the broker and prefix (default: "
                   "/etc/soundsentry/config.toml if present)")
    p.add_argument("--mqtt", metavar="URL", help="the broker (default: mqtt.url of the config)")
    p.add_argument("--device-id", default="+", metavar="ID", help="one device, or + for all (default)")
    p.add_argument("--json", action="store_true", help="every message as a JSON line: topic, retained, payload")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("devices", help="list audio inputs: index, name, channels, default rate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("flash", help="install a signed model bundle on devices (not built yet)")
    p.set_defaults(func=not_built("signed model flashing has no issue yet"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soundsentry", description="Edge sound classifier: log-mel + int8 CNN, events over MQTT.")
    parser.add_argument("--version", action="version", version=f"soundsentry {package_version()}")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_device_commands(sub)
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "INFO")
    try:
        return args.func(args)
    except SoundsentryError as exc:
        print(f"soundsentry {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
