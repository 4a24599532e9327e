"""`soundsentry train` and `soundsentry evaluate`: argument parsing only; the work is in run.py and evaluate.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from soundsentry.device.errors import SoundsentryError

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "soundsentry" / "features"


def need_training_extra() -> None:
    """Fail in one line when the [train] extra is not installed."""
    try:
        import keras  # noqa: F401
        import librosa  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise SoundsentryError(f"needs the training extra ({exc.name} is missing): pip install 'soundsentry[train]'") from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_train(args: argparse.Namespace) -> int:
    need_training_extra()
    from .config import load_train_config
    from .run import train

    config = load_train_config(args.config, preset=args.preset)
    if args.epochs is not None:
        from dataclasses import replace

        config = replace(config, fit=replace(config.fit, epochs=args.epochs))
    summary = train(args.data, args.out, config=config, cv=args.cv, k=args.folds, format=args.format,
                    cache_dir=None if args.no_cache else args.cache_dir, final=not args.cv_only)
    print(json.dumps(summary if args.json else {k: summary[k] for k in summary if k not in ("labels", "skipped_clips")},
                     indent=None if args.json else 2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    need_training_extra()
    from .evaluate import evaluate

    result = evaluate(args.data, args.model, format=args.format, cache_dir=None if args.no_cache else args.cache_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"model {result['model']}\ndata {result['data']} ({result['format']}), {result['n']} clips")
    print(f"accuracy {result['accuracy']:.3f}  macro-F1 {result['macro_f1']:.3f}")
    if result["classes_not_in_model"]:
        print(f"classes the model lacks ({result['clips_not_in_model']} clips, not scored): "
              + ", ".join(result["classes_not_in_model"]))
    for label, m in sorted(result["per_class"].items()):
        print(f"  {label:24} precision {m['precision']:.2f}  recall {m['recall']:.2f}  clips {m['support']}")
    if result["skipped"]:
        print(f"skipped {len(result['skipped'])} unreadable clips", file=sys.stderr)
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="ESC-50, UrbanSound8K or folder-per-class data set")
    p.add_argument("--format", choices=("esc50", "urbansound8k", "folders"), help="default: detected")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), metavar="DIR", help="feature cache (default %(default)s)")
    p.add_argument("--no-cache", action="store_true", help="extract features afresh and keep nothing")


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on labelled sounds (needs the [train] extra)")
    _data_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory for the model and its reports")
    p.add_argument("--config", metavar="FILE", help="training config (TOML)")
    p.add_argument("--preset", help="compact (default), seed-multiscale or baseline-mfcc-logreg")
    p.add_argument("--cv", action="store_true", help="k-fold cross-validation first (data set's folds or grouped)")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="K for grouped cross-validation (default 5)")
    p.add_argument("--cv-only", action="store_true", help="with --cv: skip the final fit on all data")
    p.add_argument("--epochs", type=int, help="override fit.epochs")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=cmd_train)


def register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class figures of a model on a data set")
    _data_args(p)
    p.add_argument("--model", metavar="BUNDLE|KERAS", help="a bundle or a run's model.keras (default: shipped)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
