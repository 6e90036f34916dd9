"""Can the face model itself tell an occluded face (surgical mask, balaclava, hand, microphone)
from a bare one? An experiment for issue 15's "occluders" item.

The face space's texture model (200 principal components of normalised face luminance, learnt on
LFW and CelebA dev faces) rebuilds a bare face closely; what it has never seen (a mask over nose
and mouth, fingers, a microphone) it cannot rebuild. The score of a face is the share of its
inner face (the texture frame's mask) whose rebuild error exceeds ``--error`` face luminance
standard deviations, in the lower and the upper face separately. Reference: the main face of LFW
and CelebA dev photos; test bed: every WIDER dev face the render gate lets a new face onto.

    python bench/experiments/occlusion.py [--images 120] [--faces 300] [--sheet /tmp/occlusion.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from faceanon.anonymize import render_gate  # noqa: E402
from faceanon.detect.base import main_face  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA, load_dataset  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.facespace import geometry as geo  # noqa: E402
from faceanon.models.facespace.model import face_space  # noqa: E402
from faceanon.pipeline import Pipeline  # noqa: E402


def rebuild_error(fs, image: np.ndarray, landmarks68: np.ndarray, components: int = 200) -> np.ndarray:
    """The texture model's rebuild error of the face, in face luminance std, in the texture
    frame (tex x tex; NaN outside the face)."""
    points = geo.face_points(landmarks68)
    tex, _ = geo.warp(geo.luminance(image), points, fs.tex_pts, fs.face_triangles, (fs.tex, fs.tex), ids=fs._tex_ids)
    g = tex[fs.tex_mask]
    g = (g - g.mean()) / (g.std() + 1e-6) - fs.tex_mean
    pcs = fs.tex_pcs[:components]
    residual = g - (g @ pcs.T) @ pcs
    out = np.full((fs.tex, fs.tex), np.nan, np.float32)
    out[fs.tex_mask] = residual
    return out


def scores(fs, error: np.ndarray, limit: float) -> dict:
    rows = np.arange(fs.tex)[:, None] * np.ones((1, fs.tex))
    nose_y = fs.tex_pts[30, 1]
    inside = fs.tex_mask
    big = np.abs(np.nan_to_num(error)) > limit
    lower, upper = inside & (rows >= nose_y), inside & (rows < nose_y)
    return {"lower": float(big[lower].mean()), "upper": float(big[upper].mean()), "all": float(big[inside].mean()),
            "rms": float(np.sqrt(np.nanmean(error ** 2)))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=120, help="WIDER dev photos (first N)")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--faces", type=int, default=300, help="reference faces per data set")
    ap.add_argument("--error", type=float, default=2.5)
    ap.add_argument("--components", type=int, default=200, help="texture components the rebuild uses")
    ap.add_argument("--sheet", default="/tmp/occlusion.png")
    ap.add_argument("--sort", default="rms", choices=["lower", "upper", "all", "rms"], help="score the sheet and list are sorted by")
    ap.add_argument("--out", default=str(REPO / "bench/results/occlusion.json"))
    args = ap.parse_args()
    fs = face_space()
    pipe = Pipeline(method="cfa")
    reference = {}
    for name in ("lfw", "celeba"):
        data = load_dataset(name)
        photos = sorted({b for _, b, _ in data.pairs})[: args.faces]
        got = []
        for rel in photos:
            rgb = read_image(data.images / rel).rgb
            face = main_face(pipe.detect(rgb), rgb.shape)
            if face is not None and face.landmarks68 is not None:
                got.append(scores(fs, rebuild_error(fs, rgb, face.landmarks68, args.components), args.error))
        reference[name] = got
    wider = DEFAULT_DATA / "wider_face_val_subset"
    files = sorted(p for p in (wider / "images").rglob("*.jpg"))[args.skip : args.skip + args.images]
    drawn = []
    for path in files:
        rgb = read_image(path).rgb
        for face in pipe.detect(rgb):
            if face.landmarks68 is None or render_gate.refusal(rgb, face) is not None:
                continue
            error = rebuild_error(fs, rgb, face.landmarks68, args.components)
            drawn.append((scores(fs, error, args.error), path, face, error, rgb))
    summary = {}
    for key in ("lower", "upper", "all", "rms"):
        ref = np.array([s[key] for name in reference for s in reference[name]])
        summary[key] = {"reference_p50_p99_max": [float(np.percentile(ref, 50)), float(np.percentile(ref, 99)), float(ref.max())],
                        "wider_p50_p90_max": [float(np.percentile([d[0][key] for d in drawn], q)) for q in (50, 90, 100)],
                        "wider_over_reference_max": int(sum(d[0][key] > ref.max() for d in drawn)),
                        "wider_over_reference_p99": int(sum(d[0][key] > np.percentile(ref, 99) for d in drawn))}
    result = {"error": args.error, "reference_faces": {k: len(v) for k, v in reference.items()}, "wider_faces": len(drawn),
              "summary": summary,
              "wider_top": [{"photo": str(p.relative_to(wider)), "box": [round(float(v), 1) for v in f.box], **s}
                            for s, p, f, _, _ in sorted(drawn, key=lambda d: -d[0][args.sort])[:40]]}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    # sheet: the 40 WIDER faces with the highest score, face and error map side by side
    tiles = []
    for s, _, face, error, rgb in sorted(drawn, key=lambda d: -d[0][args.sort])[:40]:
        x1, y1, x2, y2 = (int(v) for v in face.box)
        pad = int(0.2 * (x2 - x1))
        crop = rgb[max(0, y1 - pad): y2 + pad, max(0, x1 - pad): x2 + pad]
        crop = cv2.resize(crop, (96, 96))
        heat = np.clip(np.abs(np.nan_to_num(error)) / (2 * args.error), 0, 1)
        heat = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
        heat = cv2.resize(heat, (96, 96), interpolation=cv2.INTER_NEAREST)
        tile = np.concatenate([crop, heat], axis=1)
        cv2.putText(tile, f"{s[args.sort]:.2f}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        tiles.append(tile)
    while len(tiles) % 5:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.concatenate([np.concatenate(tiles[i:i + 5], axis=1) for i in range(0, len(tiles), 5)], axis=0)
    cv2.imwrite(args.sheet, sheet[:, :, ::-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
