"""PNG plots of an ECG evaluation report: the confusion matrix of every scored input kind and
the headline figures beside the published anchors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _confusion_png(part: dict[str, Any], split: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    cm = np.asarray(part["confusion_matrix"], dtype=np.float64)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    classes = part["classes"]
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            f"{int(v)}",
            ha="center",
            va="center",
            color="white" if rows[i, j] > 0.5 else "black",
            fontsize=8,
        )
    ax.set_title(f"Confusion matrix ({split}, {part['inputs_label']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report_plots(report: dict[str, Any], folder: Path, parts: dict[str, dict[str, Any]]) -> None:
    """``confusion.png`` (top-level inputs), ``confusion-<suffix>.png`` for each further scored
    part in ``parts`` (by file suffix), and ``anchors.png`` with every scored input kind beside
    the anchors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _confusion_png(report, report["split"], folder / "confusion.png")
    for suffix, part in parts.items():
        _confusion_png(part, report["split"], folder / f"confusion-{suffix}.png")
    keys = ["S_se", "S_ppv", "V_se", "V_ppv"]
    sources = [
        *(
            (f"this model, {part['inputs_label']}", part["headline"])
            for part in (report, *parts.values())
        ),
        *((a["source"], a) for a in report["anchors"][:2]),
    ]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / len(sources)
    for k, (label, values) in enumerate(sources):
        ax.bar(
            np.arange(len(keys)) + k * width, [values[key] or 0 for key in keys], width, label=label
        )
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, ["S Se", "S +P", "V Se", "V +P"])
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.set_title(f"{report['split']} figures vs published anchors")
    fig.tight_layout()
    fig.savefig(folder / "anchors.png", dpi=120)
    plt.close(fig)
