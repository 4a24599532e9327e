"""`soundsentry convert` and `soundsentry bench`: argument parsing only."""

from __future__ import annotations

import argparse
import json
import os


def cmd_convert(args: argparse.Namespace) -> int:
    from soundsentry.train.cli import need_training_extra

    need_training_extra()
    from .convert import convert_model

    result = convert_model(args.model, args.calibration, args.out, quant=args.quant, force=args.force,
                           name=args.name, version=args.version, check_data=args.check_data, format=args.format,
                           cache_dir=None if args.no_cache else args.cache_dir)
    print(json.dumps(result))
    return 0


def register_convert(sub: argparse._SubParsersAction) -> None:
    from soundsentry.train.cli import DEFAULT_CACHE

    p = sub.add_parser("convert", help="Keras model to a checked TFLite bundle (needs the [train] extra)")
    p.add_argument("model", metavar="MODEL.keras", help="a trained model (run.json must sit beside it)")
    p.add_argument("--calibration", required=True, metavar="DATA_DIR", help="data set for int8 calibration")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="bundle file to write (.ssb)")
    p.add_argument("--quant", default="int8", choices=("int8", "float16", "float32", "dynamic"))
    p.add_argument("--check-data", metavar="DATA_DIR", help="data set to check agreement on (default: the "
                   "calibration recordings not used for calibration)")
    p.add_argument("--force", action="store_true", help="write the bundle even if agreement is below 97%%")
    p.add_argument("--name", help="bundle name (default: the run directory's name)")
    p.add_argument("--version", help="bundle version (default 1)")
    p.add_argument("--format", choices=("esc50", "urbansound8k", "folders"))
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), metavar="DIR")
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=cmd_convert)


def cmd_bench(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .bench import bench, human

    result = bench(args.model)
    print(json.dumps(result) if args.json else human(result))
    return 0


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure front end, model and pipeline speed and memory")
    p.add_argument("--model", metavar="BUNDLE", help="default: the shipped model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
