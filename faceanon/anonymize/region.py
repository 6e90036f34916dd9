"""The region of the frame an anonymizer replaces: box, ellipse or the landmark hull."""
from __future__ import annotations

import cv2
import numpy as np

from ..types import Face

REGION_SHAPES = ("box", "ellipse", "hull")


def hull_points(face: Face, scale: float) -> np.ndarray:
    """Jaw line plus a forehead estimated above the brows (68 points stop at the brows), grown
    about the centroid by ``scale``."""
    p = face.landmarks68
    jaw = p[0:17]
    brows = p[17:27]
    chin = p[8]
    brow_mid = brows.mean(0)
    up = brow_mid - chin
    # The forehead is roughly 0.35 of the brow-to-chin length above the brows.
    forehead = brows + 0.35 * up
    pts = np.concatenate([jaw, forehead])
    c = pts.mean(0)
    return c + (pts - c) * scale


def region_bounds(face: Face, shape: str, scale: float) -> np.ndarray:
    """Axis-aligned bounds ``[x1, y1, x2, y2]`` of the region."""
    if shape == "hull" and face.landmarks68 is not None:
        pts = hull_points(face, scale)
        return np.concatenate([pts.min(0), pts.max(0)])
    return face.scaled_box(scale)


def region_mask(face: Face, size: tuple[int, int], shape: str = "ellipse", scale: float = 1.3) -> np.ndarray:
    """A float mask (h, w) in {0, 1} of the region, in the coordinates of ``face``.

    ``hull`` needs 68 landmarks; without them it falls back to the ellipse."""
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    if shape == "hull" and face.landmarks68 is not None:
        pts = cv2.convexHull(np.round(hull_points(face, scale)).astype(np.int32))
        cv2.fillConvexPoly(mask, pts, 1)
    elif shape in ("ellipse", "hull"):
        x1, y1, x2, y2 = face.scaled_box(scale)
        center = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
        axes = (max(1, int(round((x2 - x1) / 2))), max(1, int(round((y2 - y1) / 2))))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 1, -1)
    elif shape == "box":
        x1, y1, x2, y2 = np.round(face.scaled_box(scale)).astype(int)
        mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = 1
    else:
        raise ValueError(f"unknown region shape {shape!r}")
    return mask.astype(np.float32)
