"""SFace's threshold for "same person" in footage like ours: pairs of *different* people cut
from the same photo (same light, blur and compression) on the WIDER dev subset.

Every face YuNet finds at >= 0.8 with a height of 32 px or more is embedded with SFace (aligned
on YuNet's own landmarks); every pair of faces in one photo is a different-people pair (a photo
rarely holds one person twice). The FAR 1e-2 and 1e-3 points of their similarity are written to
bench/results/wild_threshold.json; `faceanon evaluate video` and the render gate use the FAR
1e-2 point (models/recognizers.py: SAME_FOOTAGE_SFACE_THRESHOLD), and it prints how often LFW's
threshold (0.363) calls two of these different people the same. The same pairs aligned for the
forehead attacker (landmarks moved up FOREHEAD_SHIFT eye distances) give that attacker's FAR 1e-2
point (SAME_FOOTAGE_FOREHEAD_THRESHOLD).

The same photos give the reference detectors' score floor: the threshold was taken on clear
faces, and a hand, a fist or a turned head that a reference detector takes for a face at a low
score is "similar" to its blurred self in SFace without being anyone. For CenterFace and MTCNN
(the two references of `faceanon evaluate video`) it writes the lowest score at which their
detections of 24 px or more lie on an annotated face (IoU >= 0.3, `invalid` boxes counted as
faces) at least 95 % of the time (evaluate/video.py: REFERENCE_MIN_SCORE).

    python bench/wild_threshold.py [--images DIR]
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import create_detector  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.coverage import load_annotations  # noqa: E402
from faceanon.evaluate.video import (MIN_REFERENCE_HEIGHT, REFERENCE_MIN_SCORE, WILD_SFACE_THRESHOLD,  # noqa: E402
                                     different_people_threshold)
from faceanon.evaluate.wild import ON_A_FACE_IOU, best_iou  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.recognizers import (FOREHEAD_SHIFT, SAME_FOOTAGE_FOREHEAD_THRESHOLD, recognizer,  # noqa: E402
                                         shifted_up)

LFW_SFACE_THRESHOLD = 0.363
REFERENCE_PRECISION = 0.95


def score_floor(scored: list[tuple[float, bool]], precision: float) -> float:
    """The lowest score s at which detections scoring >= s are on a face at least ``precision``
    of the time (scores in steps of 0.05)."""
    scores = np.array([s for s, _ in scored])
    hits = np.array([h for _, h in scored], bool)
    for s in np.arange(0.0, 1.0, 0.05):
        keep = scores >= s
        if keep.any() and hits[keep].mean() >= precision:
            return round(float(s), 2)
    return 1.0


def reference_floors(root: Path, names=tuple(REFERENCE_MIN_SCORE)) -> dict:
    annotations = load_annotations(root)
    floors = {}
    for name in names:
        detector, scored = create_detector(name), []
        for rel, a in sorted(annotations.items()):
            rgb = read_image(root / "images" / rel).rgb
            for f in detector(rgb):
                if f.height >= MIN_REFERENCE_HEIGHT:
                    scored.append((f.score, best_iou(f.box, a["boxes_xywh"]) >= ON_A_FACE_IOU))
        floors[name] = {"detections": len(scored), "precision_at_any_score": round(float(np.mean([h for _, h in scored])), 3),
                        "score_floor": score_floor(scored, REFERENCE_PRECISION), "shipped": REFERENCE_MIN_SCORE[name]}
    return floors


def different_people_similarities(root: Path, shift: float = 0.0) -> tuple[np.ndarray, int]:
    """SFace similarities of every two faces found in one photo (aligned ``shift`` eye distances
    higher than their landmarks), and the number of photos they come from."""
    detector, sface = create_detector("yunet"), recognizer("sface")
    sims, photos = [], 0
    for path in sorted(p for p in (root / "images").rglob("*.jpg")):
        rgb = read_image(path).rgb
        faces = [f for f in detector(rgb) if f.score >= 0.8 and f.height >= 32]
        if len(faces) < 2:
            continue
        photos += 1
        emb = [sface.embed(rgb, shifted_up(f, shift)) for f in faces]
        sims += [float(a @ b) for a, b in itertools.combinations(emb, 2)]
    return np.array(sims), photos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    args = ap.parse_args()
    root = Path(args.images)
    sims, photos = different_people_similarities(root)
    forehead, _ = different_people_similarities(root, FOREHEAD_SHIFT)
    result = {
        "photos_with_two_faces_or_more": photos, "pairs": int(len(sims)),
        "threshold_far_1e-2": round(different_people_threshold(sims, 1e-2), 3),
        "threshold_far_1e-3": round(different_people_threshold(sims, 1e-3), 3),
        "far_at_lfw_threshold_0.363": round(float((sims >= LFW_SFACE_THRESHOLD).mean()), 4),
        "far_at_shipped_threshold": round(float((sims >= WILD_SFACE_THRESHOLD).mean()), 4),
        "shipped_threshold": WILD_SFACE_THRESHOLD,
        "forehead_attacker": {"shift_in_eye_distances": FOREHEAD_SHIFT,
                              "threshold_far_1e-2": round(different_people_threshold(forehead, 1e-2), 3),
                              "far_at_aligned_threshold": round(float((forehead >= WILD_SFACE_THRESHOLD).mean()), 4),
                              "shipped_threshold": SAME_FOOTAGE_FOREHEAD_THRESHOLD},
        f"reference_score_floor_at_precision_{REFERENCE_PRECISION}": reference_floors(root),
    }
    out = REPO / "bench" / "results" / "wild_threshold.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
