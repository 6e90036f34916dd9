"""Where do the identity engines paint new faces on real photos? (issue 15, item 2)

Runs `faceanon`'s pipeline with an identity method (default `cfa`) and the default detector over
the WIDER FACE dev subset and sorts every detected face by what it got: the method (a synthesized
face) or the fallback filter, with the fallback's reason. A synthesized face whose box overlaps
no annotated face (IoU < 0.3 with every box, `invalid` boxes counted as faces) is a new face
painted on something that is not a face. Writes bench/results/wider_render_<method>.json and,
with --sheet, a sheet of every synthesized face of 24 px or more (and of every one on a
non-face) to look at.

    python bench/wider_render.py [--method cfa] [--images N] [--sheet docs/wider_render_cfa.png]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceanon.detect.base import box_iou  # noqa: E402
from faceanon.evaluate.coverage import load_annotations  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "wider_face_val_subset"


def on_a_face(box: np.ndarray, annotated_xywh: list) -> bool:
    gt = np.array(annotated_xywh, np.float32).reshape(-1, 4)
    if not len(gt):
        return False
    gt[:, 2:] += gt[:, :2]
    return bool(box_iou(box[None], gt).max() >= 0.3)


def crop_pair(before: np.ndarray, after: np.ndarray, box: np.ndarray, size: int = 96) -> np.ndarray:
    """Before | after crops of a face (grown 1.6x), resized to ``size`` px high."""
    import cv2

    h, w = before.shape[:2]
    c, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1]) * 0.8
    x1, y1 = int(max(0, c[0] - side)), int(max(0, c[1] - side))
    x2, y2 = int(min(w, c[0] + side)), int(min(h, c[1] + side))
    tiles = [cv2.resize(im[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA) for im in (before, after)]
    return np.concatenate(tiles, axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="cfa")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--detector", default="yunet")
    ap.add_argument("--images", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N images (e.g. those thresholds were read on)")
    ap.add_argument("--sheet", help="PNG sheet of the synthesized faces (24 px or more, and all on non-faces)")
    ap.add_argument("--out", help="results JSON (default bench/results/wider_render_<method>.json)")
    args = ap.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    pipe = Pipeline(PipelineConfig(method=args.method, params=params, detector=args.detector))
    annotations = load_annotations(SHARED)
    names = sorted(annotations)[args.skip :][: args.images or None]
    got: Counter = Counter()
    reasons: Counter = Counter()
    painted_on_non_faces, tiles_big, tiles_bad = [], [], []
    start = time.perf_counter()
    for rel in names:
        rgb = read_image(SHARED / "images" / rel).rgb
        out, faces = pipe.anonymize(rgb)
        for f in faces:
            method = f.extra.get("method")
            real = on_a_face(f.box, annotations[rel]["boxes_xywh"])
            got[f"{method} on a {'face' if real else 'non-face'}"] += 1
            if "fallback" in f.extra:
                reasons[f.extra["fallback"]] += 1
            elif method == args.method:
                if not real:
                    painted_on_non_faces.append({"image": rel, "box": f.to_dict()["box"]})
                if args.sheet and (not real or f.height >= 24):
                    (tiles_big if real else tiles_bad).append(crop_pair(rgb, out, f.box))
    seconds = time.perf_counter() - start
    result = {"method": args.method, "params": params, "detector": args.detector, "images": len(names),
              "faces": sum(got.values()), "got": dict(got), "fallback_reasons": dict(reasons.most_common()),
              "synthesized_on_non_faces": len(painted_on_non_faces), "non_faces": painted_on_non_faces,
              "seconds": round(seconds, 1)}
    out_path = Path(args.out or REPO / f"bench/results/wider_render_{args.method}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "non_faces"}, indent=1))
    if args.sheet:
        from faceanon.viz import grid, save_png

        tiles = tiles_bad + tiles_big  # the ones on non-faces first
        if tiles:
            save_png(Path(args.sheet), grid(tiles, columns=6))
            print(f"sheet: {args.sheet} ({len(tiles_bad)} on non-faces first, then {len(tiles_big)} faces >= 24 px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
