"""What a training run leaves behind: history CSV, curve and confusion PNGs, per-class report, model card."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_history(history: dict, path: Path) -> None:
    keys = sorted(history)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *keys])
        for epoch in range(len(history[keys[0]]) if keys else 0):
            writer.writerow([epoch + 1, *(f"{history[k][epoch]:.6g}" for k in keys)])


def plot_history(history: dict, path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in history:
                ax.plot(np.arange(1, len(history[prefix + metric]) + 1), history[prefix + metric], style,
                        label=("validation " if prefix else "training ") + metric)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    plt = _pyplot()
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(6.0, 0.22 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_class_table(result: dict) -> str:
    lines = ["| class | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
    for label, m in sorted(result["per_class"].items()):
        lines.append(f"| {label} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | {m['support']} |")
    return "\n".join(lines) + "\n"


def model_card(*, name: str, preset: str, params: int, dataset: dict, protocol: str, metrics: dict,
               frontend: dict, window: dict, size_note: str = "") -> str:
    """A markdown model card: data and its licence, metrics with their protocol, parameters, size."""
    lines = [
        f"# Model card: {name}",
        "",
        f"- Architecture: `{preset}`, {params:,} parameters. {size_note}".rstrip(),
        f"- Input: log-mel windows of {window['frames']} frames x {frontend['n_mels']} bands "
        f"({frontend['sample_rate']} Hz, n_fft {frontend['n_fft']}, window {frontend['win_length']}, "
        f"hop {frontend['hop_length']}, {frontend['fmin']:g}-{frontend['fmax']:g} Hz); "
        f"a window every {window['hop_frames']} frames on the device.",
        f"- Data: {dataset['root']} ({dataset['format']}), {dataset['clips']} clips, {dataset['classes']} classes"
        f"{', ' + str(dataset['skipped']) + ' unreadable clips skipped' if dataset.get('skipped') else ''}.",
        f"- Licence of the data: {dataset['license']}. A model trained on data under non-commercial terms "
        "inherits them: do not use it commercially." if "NC" in dataset["license"] else
        f"- Licence of the data: {dataset['license']}.",
        "",
        "## Metrics",
        "",
        f"Protocol: {protocol}",
        "",
    ]
    for key, value in metrics.items():
        lines.append(f"- {key}: {value}")
    lines += ["", "Clip scores are the mean of the window scores over the clip's active windows (within 20 dB "
              "of its loudest window): the same rule `classify`, `evaluate` and the daemon use.", ""]
    return "\n".join(lines)
