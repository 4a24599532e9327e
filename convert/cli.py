"""`soundsentry convert` and `soundsentry bench`."""

from __future__ import annotations

import argparse
import sys


def not_yet(args: argparse.Namespace) -> int:
    print(f"soundsentry {args.command}: not built yet", file=sys.stderr)
    return 2


def register_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="Keras model to a TFLite bundle")
    p.set_defaults(func=not_yet)


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure front end, model and pipeline speed and memory")
    p.set_defaults(func=not_yet)
