"""Typed, validated configuration: nested frozen dataclasses loaded from TOML and checked at load.

A field declares its allowed range in metadata (`min`, `max`, `choices`); an unknown key, a wrong type
or a value out of range raises UsageError with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import field
from pathlib import Path

from .errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def option(default, *, min=None, max=None, choices=None, help: str = ""):
    """A config field with a default, an allowed range and a description."""
    meta = {"min": min, "max": max, "choices": choices, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(value, tp, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UsageError(f"{key}: must be a table, got {value!r}")
        return from_mapping(tp, value, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{key}: must be a list, got {value!r}")
        fixed = origin is tuple and bool(args) and args[-1] is not Ellipsis
        if fixed and len(value) != len(args):
            raise UsageError(f"{key}: must be a list of {len(args)} values, got {value!r}")
        item_types = args if fixed else [args[0] if args else typing.Any] * len(value)
        converted = [_convert(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item_types))]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise UsageError(f"{key}: must be a table, got {value!r}")
        return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is typing.Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise UsageError(f"{key}: must be {_type_name(tp)}, got {value!r}")


def _check_range(value, meta, key: str) -> None:
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    values = value if isinstance(value, (tuple, list)) else [value]
    for v in values:
        if choices is not None and v not in choices:
            raise UsageError(f"{key}: {v!r} is not one of {', '.join(map(repr, choices))}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                span = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
                raise UsageError(f"{key}: {v!r} is out of range ({span})")


def from_mapping(cls, data: dict, *, prefix: str = ""):
    """Build dataclass `cls` from a mapping, checking keys, types and ranges."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise UsageError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(fields))})")
        converted = _convert(value, hints[name], f"{prefix}{key}")
        _check_range(converted, fields[name].metadata, f"{prefix}{key}")
        kwargs[name] = converted
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def to_plain(obj):
    """A dataclass as TOML-ready plain data (paths as strings, None left out)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, Path):
        return str(obj)
    return obj
