"""The `soundsentry` command: thin argument parsing over typed core functions.

Subcommands that need training tools (train, evaluate, convert, bench) are found through the
`soundsentry.commands` entry points, so this module never imports soundsentry.train or .convert.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from .errors import SoundsentryError

COMMANDS_GROUP = "soundsentry.commands"
log = logging.getLogger("soundsentry.cli")


def package_version() -> str:
    try:
        return version("soundsentry")
    except PackageNotFoundError:
        return "0+unknown"


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

    p = sub.add_parser("run", help="listen and publish sound events (the daemon)")
    p.set_defaults(func=not_built("the daemon is issue 5"))

    p = sub.add_parser("devices", help="list audio inputs")
    p.set_defaults(func=not_built("the daemon is issue 5"))

    p = sub.add_parser("flash", help="install a signed model bundle on devices (not built yet)")
    p.set_defaults(func=not_built("signed model flashing has no issue yet"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soundsentry", description="Edge sound classifier: log-mel + int8 CNN, events over MQTT.")
    parser.add_argument("--version", action="version", version=f"soundsentry {package_version()}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_device_commands(sub)
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except SoundsentryError as exc:
        print(f"soundsentry {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
