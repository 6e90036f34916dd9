"""Fit the face space on the shared dev images and save it as facespace.npz (shipped).

    python -m faceanon.models.facespace.train [--data ../shared/data] [--out faceanon/models/facespace/facespace.npz]

Steps: 68 landmarks per image (cached) -> extended shape (+ forehead) -> generalized Procrustes
mean shape in a 128 px canonical frame -> shape-free luminance texture (64 px, piecewise-affine
warp to the mean shape, normalised per image) -> PCA of shape and texture -> combined vector ->
LDA with identity labels: the identity subspace (between-identity directions whitened by the
within-identity scatter, which holds pose, expression and light).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import linalg
from scipy.spatial import Delaunay

from ...evaluate.datasets import DEFAULT_DATA
from ...io import read_image
from . import geometry as geo
from .data import collect, landmarks

CANON = 128  # canonical frame side for shapes
TEX = 64  # texture resolution (canonical frame scaled by TEX / CANON)
SHAPE_VAR = 0.98
TEX_COMPONENTS = 200
ID_DIMS = 48


def procrustes_mean(shapes: np.ndarray, iterations: int = 4) -> np.ndarray:
    ref = shapes[0] - shapes[0].mean(0)
    for _ in range(iterations):
        aligned = np.stack([geo.apply_affine(geo.similarity_fit(s, ref), s) for s in shapes])
        ref = aligned.mean(0)
        ref = ref - ref.mean(0)
        ref = ref / np.sqrt((ref**2).sum() / len(ref))
    return ref


def to_canonical_frame(mean: np.ndarray) -> np.ndarray:
    """Scale/translate the mean shape so face + anchor ring fit the canonical square."""
    ring = geo.ring_points(mean)
    allp = np.concatenate([mean, ring])
    lo, hi = allp.min(0), allp.max(0)
    scale = (CANON - 4) / (hi - lo).max()
    centre = (lo + hi) / 2
    return ((mean - centre) * scale + CANON / 2).astype(np.float32)


def pca(x: np.ndarray, keep: float | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(0)
    u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / (len(x) - 1)
    k = keep if isinstance(keep, int) else int(np.searchsorted(np.cumsum(var) / var.sum(), keep) + 1)
    return mean.astype(np.float32), vt[:k].astype(np.float32), var[:k].astype(np.float32)


def lda(c: np.ndarray, labels: np.ndarray, dims: int, reg: float = 1e-3):
    """Directions W (d, dims) maximising between/within identity scatter with W^T Sw W = I."""
    uniq, inv = np.unique(labels, return_inverse=True)
    mean = c.mean(0)
    sw = np.zeros((c.shape[1], c.shape[1]))
    sb = np.zeros_like(sw)
    for k in range(len(uniq)):
        xk = c[inv == k]
        mk = xk.mean(0)
        sw += (xk - mk).T @ (xk - mk)
        sb += len(xk) * np.outer(mk - mean, mk - mean)
    sw /= len(c) - len(uniq)
    sb /= len(c)
    sw += reg * np.trace(sw) / len(sw) * np.eye(len(sw))
    evals, evecs = linalg.eigh(sb, sw)
    order = np.argsort(evals)[::-1][:dims]
    return evecs[:, order].astype(np.float32), evals[order].astype(np.float32), sw.astype(np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default=str(Path(__file__).with_name("facespace.npz")))
    ap.add_argument("--cache", default=".cache/facespace")
    args = ap.parse_args(argv)
    t0 = time.time()
    samples = collect(Path(args.data))
    pts68 = landmarks(samples, Path(args.cache) / "landmarks.npz")
    ok = ~np.isnan(pts68[:, 0, 0])
    samples = [s for s, k in zip(samples, ok) if k]
    pts68 = pts68[ok]
    faces = np.stack([geo.face_points(p) for p in pts68])
    print(f"{len(samples)} faces with landmarks", file=sys.stderr)

    mean = to_canonical_frame(procrustes_mean(faces[::5]))
    ring = geo.ring_points(mean)
    all_pts = np.concatenate([mean, ring])
    triangles = Delaunay(all_pts).simplices.astype(np.int32)
    face_tris = triangles[(triangles < geo.N_FACE).all(1)]
    tex_pts = mean * (TEX / CANON)
    tex_ids = geo.triangle_id_map(tex_pts, face_tris, (TEX, TEX))
    tex_mask = tex_ids >= 0

    shapes, textures, tex_stats = [], [], []
    for s, f in zip(samples, faces):
        m = geo.similarity_fit(f, mean)
        shapes.append(geo.apply_affine(m, f).reshape(-1))
        grey = geo.luminance(read_image(s.path).rgb)
        tex, _ = geo.warp(grey, f, tex_pts, face_tris, (TEX, TEX), ids=tex_ids)
        g = tex[tex_mask]
        mu, sd = g.mean(), g.std() + 1e-6
        textures.append((g - mu) / sd)
        tex_stats.append((mu, sd))
    shapes = np.stack(shapes)
    textures = np.stack(textures).astype(np.float32)
    print(f"shapes and textures sampled ({time.time() - t0:.0f}s)", file=sys.stderr)

    s_mean, s_pcs, s_var = pca(shapes, SHAPE_VAR)
    t_mean, t_pcs, t_var = pca(textures, TEX_COMPONENTS)
    shape_weight = float(np.sqrt(t_var.sum() / s_var.sum()))
    b_s = (shapes - s_mean) @ s_pcs.T
    b_t = (textures - t_mean) @ t_pcs.T
    c = np.concatenate([b_s * shape_weight, b_t], 1)
    labels = np.array([s.identity for s in samples])
    counts = {k: v for k, v in zip(*np.unique(labels, return_counts=True))}
    multi = np.array([counts[k] >= 2 for k in labels])
    w, ratios, sw = lda(c[multi], labels[multi], ID_DIMS)
    c_mean = c.mean(0)
    codes = (c - c_mean) @ w
    np.savez_compressed(
        args.out, canon=CANON, tex=TEX, mean_shape=mean, triangles=triangles, face_triangles=face_tris,
        tex_mask=tex_mask, shape_mean=s_mean, shape_pcs=s_pcs, shape_var=s_var, tex_mean=t_mean, tex_pcs=t_pcs,
        tex_var=t_var, shape_weight=shape_weight, c_mean=c_mean.astype(np.float32), id_w=w,
        id_pattern=(sw @ w).astype(np.float32), id_ratios=ratios,
        id_norm_median=np.float32(np.median(np.linalg.norm(codes, axis=1))),
        id_code_std=codes.std(0).astype(np.float32), n_train=len(samples),
        n_identities=len(np.unique(labels[multi])),
    )
    print(f"saved {args.out}: shape {s_pcs.shape[0]} + texture {t_pcs.shape[0]} components, identity {w.shape[1]} dims "
          f"from {multi.sum()} images of {len(np.unique(labels[multi]))} people ({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
