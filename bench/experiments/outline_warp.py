"""Experiment (issue 4): does changing the head outline too take the identity the face space leaves?

`cfa` changes the inner face (68 points, the forehead band and their texture); jaw contour,
hairline, hair and ears stay the person's, and SFace still matches 0.087 of LFW pairs at 90
degrees. This adds a smooth radial warp of the band around the face outline (seeded, up to
``amp`` x the face size; the inner face barely moves) after `cfa`'s change, and measures TPR and
the SFace Fréchet distance on the same probes as bench/frechet_parts.py:

    python bench/experiments/outline_warp.py [--limit 300] [--angle 90] [--amp 0.15]

Writes a before/after grid to /tmp/outline_warp.png and prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from frechet_parts import (CFA, REPO, Evaluator, anonymized_features, load_dataset, metrics, real_sets,  # noqa: E402
                           tpr)

from faceanon.models.facespace import geometry as geo  # noqa: E402
from faceanon.viz import grid, save_png  # noqa: E402


class OutlineWarp(CFA):
    """`cfa`, then the band around the face outline pushed out or pulled in along a random
    smooth profile (first three harmonics of the angle around the face)."""

    def __init__(self, angle: float, amp: float) -> None:
        super().__init__(angle=angle)
        self.amp = amp

    def apply(self, crop, face, rng):
        pixels, mask = super().apply(crop, face, rng)
        pts = geo.face_points(face.landmarks68)
        c = pts.mean(0)
        evals, evecs = np.linalg.eigh((pts - c).T @ (pts - c) / len(pts))
        radii = np.sqrt(np.maximum(evals, 1e-6)) * 2.0  # an ellipse near the face outline
        size = float(np.sqrt(radii[0] * radii[1]))
        h, w = crop.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        v = np.stack([xs - c[0], ys - c[1]], -1) @ evecs
        rho = np.hypot(v[..., 0] / radii[0], v[..., 1] / radii[1]) + 1e-6
        phi = np.arctan2(v[..., 1] / radii[1], v[..., 0] / radii[0])
        g = np.random.default_rng([0x0A7, self.seed, int(abs(face.landmarks68).sum()) % 997])
        profile = g.uniform(-0.5, 0.5) + sum(g.uniform(-1, 1) * np.cos(k * phi + g.uniform(0, 2 * np.pi)) / k
                                             for k in (1, 2, 3))
        band = np.exp(-(((rho - 1.05) / 0.3) ** 2))  # peaks on the outline, ~0 inside rho < 0.6
        disp = self.amp * size * profile * band  # outward shift of the content, in pixels
        r = np.hypot(xs - c[0], ys - c[1]) + 1e-6
        mapx = (xs - disp * (xs - c[0]) / r).astype(np.float32)
        mapy = (ys - disp * (ys - c[1]) / r).astype(np.float32)
        out = cv2.remap(pixels, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        moved = (np.abs(disp) > 0.3).astype(np.float32)
        return out, np.maximum(cv2.remap(mask.astype(np.float32), mapx, mapy, cv2.INTER_LINEAR), moved)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--angle", type=float, default=90.0)
    ap.add_argument("--amp", type=float, default=0.15)
    args = ap.parse_args()
    ev = Evaluator(load_dataset("lfw"), REPO / "report" / "cache", progress=False)
    pairs = ev.pairs(args.limit)
    n = len(pairs)
    real_1, real_2 = real_sets(ev, n)["sface"]
    feats, samples = anonymized_features(ev, pairs, OutlineWarp(args.angle, args.amp), keep=8)
    tiles = [cv2.resize(image, (180, 180)) for pair in samples for image in pair]
    print(json.dumps({"pairs": n, "angle": args.angle, "amp": args.amp,
                      "fd": metrics.frechet_distance(np.stack(feats["sface"]), real_1),
                      "fd_real_reference": metrics.frechet_distance(real_2, real_1),
                      "tpr_sface": tpr(ev, pairs, feats["sface"], "sface"), "tpr_dlib": tpr(ev, pairs, feats["dlib"], "dlib")}))
    save_png(Path("/tmp/outline_warp.png"), grid(tiles, 4))


if __name__ == "__main__":
    main()
