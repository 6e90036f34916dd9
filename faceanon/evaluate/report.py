"""The evaluation's outputs under report/: JSON per run, sample sheet, controllability curve,
and the privacy-vs-utility scatter of every run so far."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..io.atomic import atomic_path
from ..viz import grid, label, save_png


# Parameters that never go into a report's name (a password is not written to disk in clear).
SECRET_PARAMS = {"password"}


def run_name(method: str, params: dict, after: str | None = None) -> str:
    """Report name of a run: method, its non-default parameters, and ``@after`` when the
    anonymized images were degraded (JPEG, downscaling) before being scored."""
    shown = {k: v for k, v in params.items() if k not in SECRET_PARAMS}
    name = method
    if shown:
        name += "_" + "_".join(f"{k}-{str(v).replace(',', '.')}" for k, v in sorted(shown.items()))
    return name + (f"@{after}" if after else "")


def write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, default=float))


def sample_sheet(path: Path, samples: list, title: str) -> None:
    """Original and anonymized face crops side by side, with SFace similarity."""
    tiles = []
    for rel, original, anon, face, sim in samples:
        x1, y1, x2, y2 = face.scaled_box(1.8)
        h, w = original.shape[:2]
        sl = (slice(max(0, int(y1)), min(h, int(y2))), slice(max(0, int(x1)), min(w, int(x2))))
        pair = [cv2.resize(np.ascontiguousarray(im[sl]), (160, 160), interpolation=cv2.INTER_AREA) for im in (original, anon)]
        tiles.append(label(np.concatenate(pair, 1), f"{rel.split('/')[0][:16]} sim {sim:.2f}"))
    if tiles:
        save_png(path, label(grid(tiles, 4), title))


def curve_plot(path: Path, curve: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [p["value"] for p in curve["curve"]]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for rec in ("sface", "dlib"):
        ax.plot(range(len(values)), [p[f"{rec}_self_similarity"] for p in curve["curve"]], "o-", label=f"{rec} similarity")
    ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(f"{curve['param']} (weak -> strong)")
    ax.set_ylabel("cosine similarity to the original")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def scatter_plot(report_dir: Path, dataset: str) -> Path | None:
    """TPR (privacy, lower is better) against SSIM, YuNet detection rate and realism (utility)
    for every run of ``dataset`` in the report folder."""
    runs = []
    for p in sorted((report_dir / dataset).glob("*.json")):
        data = json.loads(p.read_text())
        if "summary" in data:
            runs.append((data["run"], data["summary"]))
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), dpi=100)
    # realism as 1 - judge accuracy, doubled: 1 = cannot be told from real faces, 0 = always told
    panels = [(axes[0], lambda s: s.get("ssim"), "whole-image SSIM"),
              (axes[1], lambda s: s.get("detection_yunet"), "YuNet detection rate"),
              (axes[2], lambda s: None if s.get("c2st") is None else 2 * (1 - max(s["c2st"], 0.5)),
               "realism: 2 x (1 - C2ST accuracy)")]
    for ax, value, xlabel in panels:
        for name, s in runs:
            x = value(s)
            if x is None:
                continue
            for rec, marker in (("sface", "o"), ("dlib", "s")):
                ax.scatter(x, s[f"tpr_{rec}"], marker=marker, c="C0" if rec == "sface" else "C1")
            ax.annotate(name, (x, s["tpr_sface"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel + " (utility, higher is better)")
        ax.set_ylabel("TPR at FAR 1e-3 (privacy, lower is better)")
        ax.grid(alpha=0.3)
    axes[0].scatter([], [], marker="o", c="C0", label="SFace")
    axes[0].scatter([], [], marker="s", c="C1", label="dlib")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"privacy vs utility on {dataset}")
    fig.tight_layout()
    out = report_dir / f"{dataset}_privacy_utility.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out
