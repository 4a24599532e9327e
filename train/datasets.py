"""Labelled sound data sets in three layouts: ESC-50, UrbanSound8K and one folder per class.

Each loads to the same `Dataset`: clips with a label, a fold (the data set's own, or 1) and a group
(the recording a clip was cut from), so that no split ever puts one recording on both sides.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from soundsentry.device.errors import SoundsentryError

FORMATS = ("esc50", "urbansound8k", "folders")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
ESC50_CSV = Path("meta/esc50.csv")
US8K_CSV = Path("metadata/UrbanSound8K.csv")
CC_LINK = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/([0-9.]+)")


class DatasetError(SoundsentryError):
    """A data set that cannot be used as it is; the message names the file, column or class."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    fold: int
    group: str


@dataclass
class Dataset:
    root: Path
    format: str
    clips: list[Clip]
    license: str = "unknown"
    skipped: list[str] = field(default_factory=list)
    """Clips dropped during feature extraction (unreadable audio), each with its reason."""

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.clips})

    @property
    def folds(self) -> list[int]:
        return sorted({c.fold for c in self.clips})


def detect_format(root: Path) -> str:
    if (root / ESC50_CSV).is_file():
        return "esc50"
    if (root / US8K_CSV).is_file():
        return "urbansound8k"
    if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
        return "folders"
    raise DatasetError(f"{root}: not a data set: no {ESC50_CSV}, no {US8K_CSV}, no class folders")


def read_license(root: Path) -> str:
    """The data set's licence as 'CC BY-NC 3.0', from the first Creative Commons link in its LICENSE."""
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", "README.md"):
        path = root / name
        if path.is_file():
            found = CC_LINK.search(path.read_text(errors="replace"))
            if found:
                return f"CC {found.group(1).upper()} {found.group(2)} (see {name} of the data set)"
    return "unknown"


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(f"{path}: missing column {missing[0]!r} (has: {', '.join(columns) or 'none'})")
        rows = list(reader)
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def _int(row: dict, key: str, path: Path, line: int) -> int:
    try:
        return int(row[key])
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: line {line}: {key} {row[key]!r} is not a whole number") from None


def _check_present(clips: list[Clip], csv_path: Path) -> None:
    absent = [c.path for c in clips if not c.path.is_file()]
    if absent:
        shown = ", ".join(str(p) for p in absent[:3])
        raise DatasetError(f"{csv_path}: {len(absent)} listed files are absent, first: {shown}")


def load_esc50(root: Path) -> Dataset:
    csv_path = root / ESC50_CSV
    rows = _read_csv(csv_path, ("filename", "fold", "category"))
    clips = [
        Clip(root / "audio" / r["filename"], r["category"], _int(r, "fold", csv_path, i + 2),
             r.get("src_file") or Path(r["filename"]).stem)
        for i, r in enumerate(rows)
    ]
    _check_present(clips, csv_path)
    return Dataset(root, "esc50", clips, read_license(root))


def load_urbansound8k(root: Path) -> Dataset:
    csv_path = root / US8K_CSV
    rows = _read_csv(csv_path, ("slice_file_name", "fsID", "fold", "class"))
    clips = []
    for i, r in enumerate(rows):
        fold = _int(r, "fold", csv_path, i + 2)
        clips.append(Clip(root / "audio" / f"fold{fold}" / r["slice_file_name"], r["class"], fold, r["fsID"]))
    _check_present(clips, csv_path)
    return Dataset(root, "urbansound8k", clips, read_license(root))


def load_folders(root: Path) -> Dataset:
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"{folder}: class {folder.name!r} is empty (no {'/'.join(AUDIO_SUFFIXES)} files)")
        clips += [Clip(f, folder.name, 1, f"{folder.name}/{f.stem}") for f in files]
    if not clips:
        raise DatasetError(f"{root}: no class folders with audio")
    return Dataset(root, "folders", clips, read_license(root))


def load_dataset(root: str | os.PathLike, format: str | None = None) -> Dataset:
    """Load a data set, detecting its layout unless `format` names one of FORMATS."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such data set folder")
    fmt = format or detect_format(root)
    loaders = {"esc50": load_esc50, "urbansound8k": load_urbansound8k, "folders": load_folders}
    if fmt not in loaders:
        raise DatasetError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    dataset = loaders[fmt](root)
    if len(dataset.labels) < 2:
        raise DatasetError(f"{root}: needs at least two classes, found {dataset.labels}")
    return dataset
