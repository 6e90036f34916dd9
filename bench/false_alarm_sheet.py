"""A sheet of detections that lie on no annotated WIDER face, drawn at random, to check the
precision yardstick by eye: is each one a non-face, or a face WIDER left unannotated?

Each tile shows the detection (red) with one box-size of context and the annotated faces
(green), numbered; labels are written down by hand (docs/detectors.md has the last count).
Uses the detector views cached by bench/detector_search.py.

    python bench/false_alarm_sheet.py [--config yunet:0.3,centerface:0.2] [--n 48] [--min-height 16] [--out false.png]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from detector_search import CACHE, detections  # noqa: E402
from faceanon.detect.base import box_iou  # noqa: E402
from faceanon.evaluate.coverage import load_annotations  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.io import read_image  # noqa: E402

TILE, PER_ROW = 160, 6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    ap.add_argument("--config", default="yunet:0.3,centerface:0.2", help="VIEW:THRESHOLD,... of the cached views")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--min-height", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="false_alarms.png")
    args = ap.parse_args()
    root = Path(args.data)
    ann = load_annotations(root)
    config = {v: float(t) for v, t in (item.split(":") for item in args.config.split(","))}
    cached = {v: json.loads((CACHE / f"search_{v}.json").read_text()) for v in config}
    items = []
    for rel in sorted(ann):
        dets = detections(config, cached, rel)
        gt = np.array(ann[rel]["boxes_xywh"], np.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        iou = box_iou(dets[:, :4], gt).max(1) if len(gt) and len(dets) else np.zeros(len(dets))
        items += [(rel, dets[i]) for i in np.nonzero(iou < 0.3)[0] if dets[i, 3] - dets[i, 1] >= args.min_height]
    print(f"{len(items)} detections of {args.min_height} px or more on no annotated face", file=sys.stderr)
    random.Random(args.seed).shuffle(items)
    tiles = []
    for k, (rel, box) in enumerate(items[: args.n]):
        rgb = read_image(root / "images" / rel).rgb.copy()
        for x, y, w, h in np.array(ann[rel]["boxes_xywh"], int).reshape(-1, 4):
            cv2.rectangle(rgb, (x, y), (x + w, y + h), (0, 255, 0), 1)
        x1, y1, x2, y2 = box[:4].astype(int)
        cv2.rectangle(rgb, (x1, y1), (x2, y2), (255, 0, 0), 1)
        m = max(x2 - x1, y2 - y1)
        crop = rgb[max(0, y1 - m) : y2 + m, max(0, x1 - m) : x2 + m]
        tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_CUBIC)
        cv2.putText(tile, f"{k} {box[4]:.2f}", (2, 14), 0, 0.45, (255, 255, 0), 1)
        tiles.append(tile)
    while len(tiles) % PER_ROW:
        tiles.append(np.zeros((TILE, TILE, 3), np.uint8))
    sheet = np.vstack([np.hstack(tiles[i : i + PER_ROW]) for i in range(0, len(tiles), PER_ROW)])
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
