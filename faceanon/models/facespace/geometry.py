"""Shapes and piecewise-affine warps between them.

An *extended shape* is dlib's 68 points plus 10 forehead points estimated above the brows
(68 points stop at the brows, yet forehead and hairline carry identity), plus a ring of anchor
points around the face that never move: warping the whole disc up to the ring keeps the
boundary continuous, so no seam or double jaw line appears when the face changes shape.
"""
from __future__ import annotations

import cv2
import numpy as np

N68 = 68
N_FOREHEAD = 10
N_FACE = N68 + N_FOREHEAD
N_RING = 20
FOREHEAD_RISE = 0.32  # forehead height above the brows, as a fraction of brow-to-chin length
RING_SCALE = 1.45  # anchor ring radius relative to the face points' spread


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Float luminance (ITU-R 601 weights, as PIL's "L") of an RGB image."""
    return np.asarray(rgb).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def face_points(p68: np.ndarray) -> np.ndarray:
    """68 landmarks + 10 forehead points (brows raised along the chin-to-brow direction)."""
    p = np.asarray(p68, np.float32).reshape(N68, 2)
    brows = p[17:27]
    up = brows.mean(0) - p[8]
    return np.concatenate([p, brows + FOREHEAD_RISE * up], 0)


def ring_points(face: np.ndarray, n: int = N_RING, scale: float = RING_SCALE) -> np.ndarray:
    """Anchor points on an ellipse around the face points (fixed during warps)."""
    c = face.mean(0)
    d = face - c
    # principal axes of the point cloud give an ellipse that follows head tilt
    cov = d.T @ d / len(d)
    evals, evecs = np.linalg.eigh(cov)
    radii = np.sqrt(np.maximum(evals, 1e-6)) * 2.0 * scale
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    unit = np.stack([np.cos(t) * radii[0], np.sin(t) * radii[1]], 1)
    return (unit @ evecs.T + c).astype(np.float32)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity src -> dst (rotation, uniform scale, translation)."""
    from ...align import similarity_transform

    return similarity_transform(src, dst)


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (np.asarray(pts, np.float32) @ m[:, :2].T + m[:, 2]).astype(np.float32)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, k]] for k in range(3))
    return ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])) / 2


def limit_folds(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, rounds: int = 6) -> np.ndarray:
    """``dst`` with the moves of some points held back so the warp src -> dst turns no triangle
    over and squeezes none below a fifth of its area.

    On a face turned to the side the far jaw points lie close to the nose; a shape change that
    pushes them across folds the warp, and the fold showed as a jagged notch in the face edge.
    The points of offending triangles have their move halved, round after round; after
    ``rounds`` halvings they keep none (which can pass the fold on to a neighbour, so this too
    repeats), and if a fold still remains no point moves at all. Elsewhere the change stays
    whole."""
    src = np.asarray(src, np.float32)
    move = np.asarray(dst, np.float32) - src
    before = signed_areas(src, triangles)
    significant = np.abs(before) > 1e-3

    def offending(m: np.ndarray) -> np.ndarray:
        after = signed_areas(src + m, triangles)
        return significant & ((np.sign(after) != np.sign(before)) | (np.abs(after) < 0.2 * np.abs(before)))

    for k in range(2 * rounds):
        bad = offending(move)
        if not bad.any():
            return src + move
        move[np.unique(triangles[bad])] *= 0.5 if k < rounds else 0.0
    return src + (move if not offending(move).any() else 0 * move)


def triangle_id_map(points: np.ndarray, triangles: np.ndarray, shape: tuple[int, int], offset=(0, 0)) -> np.ndarray:
    """Image of which triangle covers each pixel (-1 = none), for a given point set."""
    h, w = shape
    ids = np.full((h, w), -1, np.int32)
    pts = np.round((points - np.asarray(offset, np.float32)) * 16).astype(np.int32)  # 4 fractional bits
    for k, tri in enumerate(triangles):
        cv2.fillConvexPoly(ids, pts[tri], int(k), lineType=cv2.LINE_8, shift=4)
    return ids


def triangle_affines(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affine maps taking each dst triangle to its src triangle."""
    s = src[triangles]  # T,3,2
    d = dst[triangles]
    ones = np.ones((len(triangles), 3, 1), np.float64)
    dh = np.concatenate([d.astype(np.float64), ones], 2)  # T,3,3
    # solve dh @ A^T = s for A (T,2,3); the pseudo-inverse copes with triangles that landmarks
    # collapsed to a line (they cover no pixel, but must not stop the whole face)
    at = np.linalg.pinv(dh) @ s.astype(np.float64)  # T,3,2
    return np.transpose(at, (0, 2, 1)).astype(np.float32)


def remap_maps(ids: np.ndarray, affines: np.ndarray, offset=(0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cv2.remap maps for pixels covered by a triangle, and the coverage mask."""
    h, w = ids.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs += offset[0]
    ys += offset[1]
    covered = ids >= 0
    a = affines[np.where(covered, ids, 0)]  # h,w,2,3
    map_x = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    map_y = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    map_x[~covered] = -1
    map_y[~covered] = -1
    return map_x.astype(np.float32), map_y.astype(np.float32), covered


# Bilinear: bicubic was tried against the realism judge (bench/experiments/realism_variants.py,
# "cfa+cubic") and did no better; the experiment switches it here.
WARP_INTERPOLATION = cv2.INTER_LINEAR


def warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray, out_shape: tuple[int, int],
         offset=(0, 0), ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp of ``image`` so that ``src`` points land on ``dst`` points, into an
    output of ``out_shape`` whose pixel (0, 0) sits at ``offset`` in dst coordinates. Returns the
    warped image and the float coverage mask."""
    if ids is None:
        ids = triangle_id_map(dst, triangles, out_shape, offset)
    map_x, map_y, covered = remap_maps(ids, triangle_affines(src, dst, triangles), offset)
    out = cv2.remap(image, map_x, map_y, WARP_INTERPOLATION, borderMode=cv2.BORDER_REFLECT)
    return out, covered.astype(np.float32)
