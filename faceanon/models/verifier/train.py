"""Train the face/not-face verifier on the WIDER dev photos and measure it by cross-validation.

The default ensemble's members run on every photo; their boxes are fused as the detector fuses
them, and each fused box is labelled a face when it overlaps an annotated box (IoU >= 0.3,
``invalid`` boxes counted as faces, the precision rule of bench/wider_coverage.py). Five folds
by photo: the verifier is fitted on four and scores the fifth, so every probability in the
report is a held-out one; the table gives, for each ``min_verifier``, the coverage of annotated
faces (16 px and up, 8-16 px) and the precision of the detections kept. The shipped weights are
then fitted on all photos.

    python -m faceanon.models.verifier.train [--data DIR] [--weights OUT.json] [--report OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ...detect import create_detector
from ...detect.base import box_iou
from ...detect.ensemble import DEFAULT_MEMBERS, LARGE, EnsembleDetector, parse_members
from ...evaluate.coverage import covered_fractions, load_annotations
from ...evaluate.datasets import DEFAULT_DATA
from ...evaluate.readme import replace_section
from ...io import read_image
from .model import WEIGHTS, features, fit_logistic, predict_logistic

FOLDS = 5
MIN_VERIFIER = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7)


def candidates(root: Path, names: list[str], members: str) -> dict:
    """Per photo: the ensemble's boxes (N, 4), their features (N, F) and labels (N,)."""
    det = create_detector("ensemble", members=members)
    det.verifier = None  # the detections as they reach the verifier: every fused box kept
    ann = load_annotations(root)
    out = {}
    for i, rel in enumerate(names):
        rgb = read_image(root / "images" / rel).rgb
        faces = det.detect(rgb)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        gt = np.array(ann[rel]["boxes_xywh"], np.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        label = (box_iou(boxes, gt).max(1) >= 0.3) if len(gt) and len(boxes) else np.zeros(len(boxes), bool)
        out[rel] = (boxes, features(faces, det.member_names, rgb.shape[0]), label.astype(np.float64))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(names)} photos", file=sys.stderr)
    return out


def scores(ann: dict, photos: list[str], boxes: dict, keep: dict) -> dict:
    """Coverage (16 px up, 8-16 px) and precision of the kept detections, over ``photos``."""
    c16 = n16 = c8 = n8 = tp = n = 0
    for rel in photos:
        b = boxes[rel][0][keep[rel]]
        gt_xywh = ann[rel]["boxes_xywh"]
        invalid = ann[rel].get("invalid", [0] * len(gt_xywh))
        frac = covered_fractions(gt_xywh, [list(x) for x in b], 1.3)
        for (_, _, _, h), f, bad in zip(gt_xywh, frac, invalid):
            if bad:
                continue
            if h >= 16:
                n16, c16 = n16 + 1, c16 + (f >= 0.7)
            elif h >= 8:
                n8, c8 = n8 + 1, c8 + (f >= 0.7)
        tp += int(boxes[rel][2][keep[rel]].sum())
        n += len(b)
    return {"covered_16px_up": round(c16 / max(n16, 1), 4), "covered_8_16px": round(c8 / max(n8, 1), 4),
            "precision": round(tp / max(n, 1), 4), "kept_per_photo": round(n / max(len(photos), 1), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    ap.add_argument("--members", default=DEFAULT_MEMBERS)
    ap.add_argument("--weights", default=str(WEIGHTS))
    ap.add_argument("--report", default="bench/results/verifier.json")
    ap.add_argument("--page", default="docs/detectors.md", help="refresh its table ('' to skip)")
    args = ap.parse_args()
    root = Path(args.data)
    ann = load_annotations(root)
    names = sorted(ann)
    data = candidates(root, names, args.members)
    fold = {rel: i % FOLDS for i, rel in enumerate(names)}
    held = {}
    for k in range(FOLDS):
        train = [r for r in names if fold[r] != k and len(data[r][0])]
        model = fit_logistic(np.vstack([data[r][1] for r in train]), np.concatenate([data[r][2] for r in train]))
        for r in names:
            if fold[r] == k:
                held[r] = predict_logistic(model, data[r][1]) if len(data[r][0]) else np.zeros(0)
    large = EnsembleDetector.params["min_verifier_large"].default

    def kept(t: float, t_large: float) -> dict:
        heights = {r: data[r][0][:, 3] - data[r][0][:, 1] for r in names}
        return {r: held[r] >= np.where(heights[r] >= LARGE, max(t, t_large), t) for r in names}

    frontier = [{"min_verifier": t, **scores(ann, names, data, kept(t, large))} for t in MIN_VERIFIER]
    without_large_rule = {"min_verifier": 0.0, "min_verifier_large": 0.0, **scores(ann, names, data, kept(0.0, 0.0))}
    used = [r for r in names if len(data[r][0])]
    model = fit_logistic(np.vstack([data[r][1] for r in used]), np.concatenate([data[r][2] for r in used]))
    model["members"] = [m.name for m in parse_members(args.members)]
    model["trained_on"] = f"{len(names)} WIDER FACE val photos (dev subset), members {args.members}"
    Path(args.weights).write_text(json.dumps(model, indent=1) + "\n")
    report = {"members": args.members, "photos": len(names), "folds": FOLDS, "min_verifier_large": large,
              "detections": int(sum(len(data[r][0]) for r in names)), "cross_validated": frontier,
              "without_the_large_box_rule": without_large_rule}
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    if args.page and Path(args.page).exists():
        replace_section(Path(args.page), "verifier-frontier", table(report))
    return 0


def table(report: dict) -> str:
    lines = ["| `min_verifier` | covered, h >= 16 px | covered, h 8-16 px | precision | detections per photo |",
             "|---|---|---|---|---|"]
    for r in report["cross_validated"]:
        label = f"{r['min_verifier']}" + (" (default)" if r["min_verifier"] == 0 else "")
        lines.append(f"| {label} | {r['covered_16px_up']:.3f} | {r['covered_8_16px']:.3f} | {r['precision']:.2f} | {r['kept_per_photo']} |")
    r = report["without_the_large_box_rule"]
    lines.append(f"| 0, and no `min_verifier_large` | {r['covered_16px_up']:.3f} | {r['covered_8_16px']:.3f} | "
                 f"{r['precision']:.2f} | {r['kept_per_photo']} |")
    return "\n".join(lines) + (f"\n\nEvery row but the last also drops boxes of {LARGE} px and up under "
                               f"{report['min_verifier_large']} (`min_verifier_large`). {report['photos']} WIDER dev photos, "
                               f"{report['folds']}-fold cross-validation by photo (every probability a held-out one); "
                               "`python -m faceanon.models.verifier.train`.")


if __name__ == "__main__":
    raise SystemExit(main())
