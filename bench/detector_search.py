"""Which detector configuration covers the most WIDER faces, chosen by cross-validation?

Every *view* (a detector on the whole image, on a mirrored copy, or on tiles enlarged 2x) is
run once per photo of the WIDER dev subset with a very low score threshold, and its boxes are
cached (bench/results/detections/, not in git). A configuration is a set of views, each with
its own score threshold; its detections are the union of the views' boxes, merged by NMS.

Cross-validation: the photos are split into 5 folds; for each fold the configuration is chosen
on the other 4 (the most faces of 16 px or more covered, then of 8-16 px, among those with at
most ``--max-false`` detections per photo that lie on no annotated face) and scored on the
held-out fold. The held-out figures, summed over the folds, are the honest coverage; the
configuration chosen on all photos is the one to ship. Writes bench/results/detector_search.json.

    python bench/detector_search.py [--views yunet,yunet-flip,...] [--max-false 6]
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import create_detector  # noqa: E402
from faceanon.detect.base import box_iou, nms_indices  # noqa: E402
from faceanon.evaluate.coverage import covered_fractions, load_annotations  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.io import read_image  # noqa: E402

CACHE = REPO / "bench" / "results" / "detections"
FOLDS = 5
MASK_SCALE, MIN_COVER = 1.3, 0.7
# detector name, transformation of the photo
VIEWS = {
    "yunet": ("yunet", "whole"), "yunet-flip": ("yunet", "flip"), "yunet-x2": ("yunet", "x2"),
    "centerface": ("centerface", "whole"), "centerface-flip": ("centerface", "flip"), "centerface-x2": ("centerface", "x2"),
    # the photo shrunk to 0.75 or 0.5 of its size: cheaper, fewer small faces
    "centerface-s075": ("centerface", "s075"), "centerface-s050": ("centerface", "s050"),
}
THRESHOLDS = {"yunet": (0.1, 0.2, 0.3, 0.5, 0.7, 1.01),
              "centerface": (0.05, 0.06, 0.07, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.01)}  # 1.01 = view unused


def run_view(view: str, root: Path, names: list[str]) -> dict:
    path = CACHE / f"search_{view}.json"
    if path.exists():
        return json.loads(path.read_text())
    name, how = VIEWS[view]
    det = create_detector(name, threshold=0.1 if name == "yunet" else 0.05)
    out, t = {}, time.perf_counter()
    for rel in names:
        rgb = read_image(root / "images" / rel).rgb
        w = rgb.shape[1]
        if how == "whole":
            faces = det._detect_once(rgb)
        elif how == "flip":
            faces = [f.transformed(1.0) for f in det._detect_once(np.ascontiguousarray(rgb[:, ::-1]))]
            for f in faces:
                f.box = np.array([w - f.box[2], f.box[1], w - f.box[0], f.box[3]], np.float32)
        elif how.startswith("s0"):
            s = int(how[1:]) / 100
            small = cv2.resize(rgb, (round(w * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
            faces = [f.transformed(1 / s) for f in det._detect_once(small)]
        else:
            faces = det._detect_tiled(rgb, 2.0)
        out[rel] = [[*map(float, f.box), float(f.score)] for f in faces]
    print(f"{view}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def detections(config: dict[str, float], cached: dict, rel: str) -> np.ndarray:
    rows = [r for view, t in config.items() if t <= 1 for r in cached[view][rel] if r[4] >= t]
    if not rows:
        return np.zeros((0, 5), np.float32)
    a = np.array(rows, np.float32)
    return a[nms_indices(a[:, :4], a[:, 4], 0.4)]


def _covered(gt_xywh: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """covered_fractions (evaluate/coverage.py), fast: a face one grown box covers by itself is
    settled by box arithmetic; only the others go through the pixel union."""
    out = np.zeros(len(gt_xywh))
    if not len(dets) or not len(gt_xywh):
        return out
    c = (dets[:, :2] + dets[:, 2:4]) / 2
    half = (dets[:, 2:4] - dets[:, :2]) * MASK_SCALE / 2
    grown = np.concatenate([c - half, c + half], 1)
    gt = gt_xywh.copy()
    gt[:, 2:] += gt[:, :2]
    iw = np.clip(np.minimum(gt[:, None, 2], grown[None, :, 2]) - np.maximum(gt[:, None, 0], grown[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(gt[:, None, 3], grown[None, :, 3]) - np.maximum(gt[:, None, 1], grown[None, :, 1]), 0, None)
    area = np.maximum((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]), 1e-9)
    inter = iw * ih / area[:, None]
    out = inter.max(1)
    unsure = np.nonzero((out < MIN_COVER) & (inter.sum(1) >= MIN_COVER))[0]
    for k in unsure:
        touching = [list(dets[j, :4]) for j in np.nonzero(inter[k] > 0)[0]]
        out[k] = covered_fractions([gt_xywh[k]], touching, MASK_SCALE)[0]
    return out


def score_photo(ann: dict, dets: np.ndarray, exact: bool = False) -> tuple[int, int, int, int, int]:
    """(faces >= 16 px covered, of them, faces 8-16 px covered, of them, false detections);
    ``exact``: coverage by evaluate/coverage.py's pixel union (the search uses box arithmetic,
    which differs on a face in ~500)."""
    boxes = ann["boxes_xywh"]
    invalid = ann.get("invalid", [0] * len(boxes))
    frac = (covered_fractions(boxes, [list(d[:4]) for d in dets], MASK_SCALE) if exact
            else _covered(np.array(boxes, np.float64).reshape(-1, 4), dets))
    c16 = n16 = c8 = n8 = 0
    for (_, _, _, h), f, bad in zip(boxes, frac, invalid):
        if bad:
            continue
        if h >= 16:
            n16 += 1
            c16 += f >= MIN_COVER
        elif h >= 8:
            n8 += 1
            c8 += f >= MIN_COVER
    gt = np.array(boxes, np.float32).reshape(-1, 4)
    gt[:, 2:] += gt[:, :2]
    false = int((box_iou(dets[:, :4], gt).max(1) < 0.3).sum()) if len(gt) and len(dets) else len(dets)
    return c16, n16, c8, n8, false


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    ap.add_argument("--views", default=",".join(VIEWS))
    ap.add_argument("--max-false", type=float, default=6.0, help="false detections per photo allowed")
    ap.add_argument("--min-coverage", help="C16,C8: instead, the configuration with the fewest detections per photo "
                    "that covers C16 of faces of 16 px or more and C8 of those of 8-16 px (the default detector's rule)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "detector_search.json"))
    args = ap.parse_args()
    root = Path(args.data)
    ann = load_annotations(root)
    names = sorted(ann)
    views = args.views.split(",")
    cached = {v: run_view(v, root, names) for v in views}
    grids = [THRESHOLDS[VIEWS[v][0]] for v in views]
    configs = [dict(zip(views, ts)) for ts in itertools.product(*grids) if any(t <= 1 for t in ts)]
    print(f"{len(configs)} configurations", file=sys.stderr)
    # per configuration, per photo scores
    table = np.array([[score_photo(ann[rel], detections(c, cached, rel)) for rel in names] for c in configs])
    fold = np.arange(len(names)) % FOLDS

    n_dets = np.array([[len(detections(c, cached, rel)) for rel in names] for c in configs])

    def best(mask: np.ndarray) -> int:
        s = table[:, mask].sum(1)
        cov16, cov8, false = s[:, 0] / s[:, 1], s[:, 2] / np.maximum(s[:, 3], 1), s[:, 4] / mask.sum()
        if args.min_coverage:
            want16, want8 = map(float, args.min_coverage.split(","))
            ok = (cov16 >= want16) & (cov8 >= want8)
            if ok.any():
                return int(np.argmin(np.where(ok, n_dets[:, mask].sum(1), np.inf)))
            return int(np.argmax(cov16 + 1e-3 * cov8))
        allowed = false <= args.max_false
        key = np.where(allowed, cov16 + 1e-3 * cov8, -1)
        return int(np.argmax(key))

    def exact(config: dict, photos) -> np.ndarray:
        return np.array([score_photo(ann[names[j]], detections(config, cached, names[j]), exact=True) for j in photos]).sum(0)

    held = np.zeros(5, np.int64)
    chosen = []
    for k in range(FOLDS):
        i = best(fold != k)
        chosen.append(configs[i])
        held += exact(configs[i], np.nonzero(fold == k)[0])
    final = best(np.ones(len(names), bool))
    s = exact(configs[final], range(len(names)))
    result = {
        "views": views, "rule": (f"fewest detections covering {args.min_coverage}" if args.min_coverage
                                 else f"most coverage with <= {args.max_false} false per photo"), "photos": len(names),
        "cross_validated": {"covered_16px_up": round(held[0] / held[1], 4), "faces_16px_up": int(held[1]),
                            "covered_8_16px": round(held[2] / max(held[3], 1), 4), "faces_8_16px": int(held[3]),
                            "false_per_photo": round(held[4] / len(names), 2),
                            "detections_per_photo": round(sum(n_dets[configs.index(c), fold == k].sum()
                                                              for k, c in enumerate(chosen)) / len(names), 2)},
        "chosen_per_fold": chosen,
        "chosen_on_all": configs[final],
        "on_all": {"covered_16px_up": round(s[0] / s[1], 4), "covered_8_16px": round(s[2] / max(s[3], 1), 4),
                   "false_per_photo": round(s[4] / len(names), 2)},
    }
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
