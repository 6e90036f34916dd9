"""`faceanon evaluate wider --method M`: a method on real photos (the WIDER FACE subset).

One pass over the photos gives three things:
- where the method painted new faces: every detected face is sorted by what it got (the method
  or the fallback filter, with the fallback's reason) and by whether it lies on an annotated face
  (IoU >= 0.3 with some box, ``invalid`` boxes counted as faces); a synthesized face on no
  annotated face is a new face painted on something that is not a face;
- realism in the wild: the C2ST judge (realism.py) on faces cut from the photos, anonymized faces
  from one half of the photos against untouched faces from the other half (photos split by a
  fixed hash, so the people differ), both selected the same way: detected by the pipeline's
  detector, on an annotated face (IoU >= 0.5), at least JUDGE_MIN_HEIGHT px high;
- detection coverage of the annotated faces by the pipeline's detections.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..detect.base import box_iou
from ..io import read_image
from ..pipeline import Pipeline, PipelineConfig
from .coverage import load_annotations, wider_coverage
from .realism import CropSet, judge_crop, judge_half, two_sample_test

JUDGE_MIN_HEIGHT = 32  # smaller faces say little about realism at the judge's 64 px
ON_A_FACE_IOU = 0.3


def best_iou(box: np.ndarray, annotated_xywh: list) -> float:
    """Largest IoU of ``box`` (x1, y1, x2, y2) with the annotated boxes (x, y, w, h)."""
    gt = np.array(annotated_xywh, np.float32).reshape(-1, 4)
    if not len(gt):
        return 0.0
    gt[:, 2:] += gt[:, :2]
    return float(box_iou(np.asarray(box, np.float32)[None], gt).max())


def crop_pair(before: np.ndarray, after: np.ndarray, box: np.ndarray, size: int = 96) -> np.ndarray:
    """Before | after crops of a face (grown 1.6x), resized to ``size`` px high."""
    import cv2

    h, w = before.shape[:2]
    c, side = (box[:2] + box[2:]) / 2, max(box[2] - box[0], box[3] - box[1]) * 0.8
    x1, y1 = int(max(0, c[0] - side)), int(max(0, c[1] - side))
    x2, y2 = int(min(w, c[0] + side)), int(min(h, c[1] + side))
    tiles = [cv2.resize(im[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA) for im in (before, after)]
    return np.concatenate(tiles, axis=1)


def evaluate_wider_method(config: PipelineConfig, root: Path, images: int = 0, skip: int = 0,
                          sheet: Path | None = None, progress: bool = False) -> dict:
    pipe = Pipeline(config)
    annotations = load_annotations(root)
    names = sorted(annotations)[skip:][: images or None]
    got: Counter = Counter()
    reasons: Counter = Counter()
    on_non_faces, renders, tiles_faces, tiles_non_faces = [], [], [], []
    real, fake = CropSet.empty(), CropSet.empty()
    judged = Counter()
    detections = {}
    from tqdm import tqdm

    for rel in tqdm(names, desc=f"wider {config.method}", unit="photo", disable=not progress, leave=False):
        ann = annotations[rel]
        rgb = read_image(root / "images" / rel).rgb
        side = judge_half(rel)
        out, faces = pipe.anonymize(rgb)
        detections[rel] = [f.to_dict() for f in faces]
        for i, f in enumerate(faces):
            iou = best_iou(f.box, ann["boxes_xywh"])
            method = f.extra.get("method")
            got[f"{method} on a {'face' if iou >= ON_A_FACE_IOU else 'non-face'}"] += 1
            if "fallback" in f.extra:
                reasons[f.extra["fallback"]] += 1
            elif method == config.method and config.method != config.fallback:
                # every new face with what the detector knew of it (score, verifier), to read a gate off
                renders.append({"image": rel, **f.to_dict(), "on_a_face": bool(iou >= ON_A_FACE_IOU)})
                if iou < ON_A_FACE_IOU:
                    on_non_faces.append({"image": rel, "box": f.to_dict()["box"]})
                if sheet and (iou < ON_A_FACE_IOU or f.height >= 24):
                    (tiles_faces if iou >= ON_A_FACE_IOU else tiles_non_faces).append(crop_pair(rgb, out, f.box))
            if iou >= 0.5 and f.height >= JUDGE_MIN_HEIGHT:
                # the judge sees the real half untouched and the fake half as the method left it
                (fake if side == "fake" else real).add(judge_crop(out if side == "fake" else rgb, f.box), f"{rel}#{i}")
                if side == "fake":
                    judged[method] += 1
    result = {"method": config.method, "params": {k: v for k, v in config.params.items() if k != "password"},
              "detector": config.detector, "images": len(names), "faces": sum(got.values()), "got": dict(got),
              "fallback_reasons": dict(reasons.most_common()),
              "synthesized_on_non_faces": len(on_non_faces), "non_faces": on_non_faces,
              "renders": renders,
              "judged_fake_faces_got": dict(judged),
              **two_sample_test(real, fake),
              "coverage": wider_coverage({r: annotations[r] for r in names}, detections, config.mask_scale)["all"]}
    if sheet:
        from ..viz import grid, save_png

        tiles = tiles_non_faces + tiles_faces  # the ones on non-faces first
        if tiles:
            save_png(Path(sheet), grid(tiles, columns=6))
        result["sheet"] = {"path": str(sheet), "on_non_faces": len(tiles_non_faces), "faces_24px_up": len(tiles_faces)}
    return result
