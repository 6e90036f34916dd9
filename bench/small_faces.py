"""How small may a face be and still get a new face? (issue 15: small drawn faces)

CelebA dev faces (colour, one per person) are shrunk so that their eyes lie D px apart and put
through the whole pipeline with `cfa` at its defaults (ensemble detector, render gate,
recognizer gate). For each D: the share of faces drawn on, the fallback reasons, and whether a
drawn face still reads as a face to two detector families that the run's own detector is not:
MTCNN's O-Net (probability) and YuNet on a second, zoomed look (score), each for the original
face and for the new one in the same place. A new face that no longer reads as one is an
artefact in place of a face (the dark, ringed eyes seen on small faces of the video clips);
the blur is the honest answer there.

    python bench/small_faces.py [--faces 100] [--distances 8,10,12,14,16,20,24] [--sheet PATH]

Writes bench/results/small_faces.json; --sheet saves original | new face pairs per distance.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.anonymize.render_gate import onet_score, second_look_score  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA, identity, load_dataset  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402

CANVAS = 3.0  # the shrunk photo is set in a canvas this many eye distances times 8 wide


def shrunk(rgb: np.ndarray, eyes: float, distance: float) -> np.ndarray:
    """The photo scaled so its face's eyes are ``distance`` px apart, with the border repeated
    around it so the face has the same context at every size."""
    k = distance / eyes
    small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    pad = max(0, int(CANVAS * 8 * distance - max(small.shape[:2])) // 2)
    return cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REFLECT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--distances", default="8,10,12,14,16,20,24")
    ap.add_argument("--sheet", help="PNG of original | new face for a few faces per distance")
    args = ap.parse_args()
    root = DEFAULT_DATA / "celeba_faces" / "images"
    first_of_each: dict[str, str] = {}
    for rel in load_dataset("celeba").gallery():
        first_of_each.setdefault(identity(rel), rel)
    people = list(first_of_each.values())[: args.faces]
    pipe = Pipeline(PipelineConfig(method="cfa"))
    distances = [float(d) for d in args.distances.split(",")]
    rows, tiles = [], {d: [] for d in distances}
    for rel in people:
        rgb = read_image(root / rel).rgb
        found = pipe.detect(rgb)
        if not found:
            continue
        main_face = max(found, key=lambda f: f.height)
        eyes = float(np.linalg.norm(main_face.landmarks5[1] - main_face.landmarks5[0]))
        for d in distances:
            image = shrunk(rgb, eyes, d)
            out, faces = pipe.anonymize(image)
            centre = np.array([image.shape[1] / 2, image.shape[0] / 2])
            near = [f for f in faces if np.linalg.norm(f.center - centre) < 2 * d]
            if not near:
                rows.append({"face": rel, "distance": d, "got": "not detected"})
                continue
            face = max(near, key=lambda f: f.height)
            row = {"face": rel, "distance": d, "height": round(face.height, 1), "got": face.extra.get("method"),
                   "reason": face.extra.get("fallback")}
            if row["got"] == "cfa":
                row.update(onet_before=onet_score(image, face), onet_after=onet_score(out, face),
                           look_before=second_look_score(image, face), look_after=second_look_score(out, face))
                if args.sheet and len(tiles[d]) < 6:
                    x1, y1, x2, y2 = (int(v) for v in face.scaled_box(1.6))
                    x1, y1 = max(0, x1), max(0, y1)
                    pair = [cv2.resize(im[y1:y2, x1:x2], (120, 120), interpolation=cv2.INTER_NEAREST) for im in (image, out)]
                    tiles[d].append(np.hstack(pair))
            rows.append(row)
    summary = []
    for d in distances:
        at = [r for r in rows if r["distance"] == d]
        drawn = [r for r in at if r["got"] == "cfa"]
        reasons: dict[str, int] = {}
        for r in at:
            if r.get("reason"):
                reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1

        def median(key: str) -> float | None:
            return round(float(np.median([r[key] for r in drawn])), 3) if drawn else None

        def share(key: str, floor: float) -> float | None:
            return round(float(np.mean([r[key] >= floor for r in drawn])), 3) if drawn else None

        summary.append({"eye_distance": d, "faces": len(at), "drawn": len(drawn), "fallback_reasons": reasons,
                        "onet_before": median("onet_before"), "onet_after": median("onet_after"),
                        "look_before": median("look_before"), "look_after": median("look_after"),
                        "onet_after_ge_0.5": share("onet_after", 0.5), "look_after_ge_0.8": share("look_after", 0.8)})
        print(json.dumps(summary[-1]), flush=True)
    out_path = REPO / "bench" / "results" / "small_faces.json"
    out_path.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    if args.sheet:
        from faceanon.viz import save_png

        blocks = [np.vstack(t) for t in tiles.values() if t]
        height = max(b.shape[0] for b in blocks)
        save_png(Path(args.sheet), np.hstack([np.pad(b, ((0, height - b.shape[0]), (0, 4), (0, 0))) for b in blocks]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
