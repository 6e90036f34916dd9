"""Build the bank of synthetic identities (composites.npz, shipped).

Each composite is the average shape-free face detail of K >= 8 *different* people whose
identity codes are close (k-Same's rule: what is published is an average of at least k
identities, never one person), all of the same predicted gender (by the age and gender
networks, majority over each person's photos: averaging men with women gives androgynous
composites that change a face's gender). Identities are grouped greedily: an unassigned identity with
its K-1 nearest unassigned neighbours in the identity space, so a composite stays coherent
(similar people average into a sharper, natural face). Stored per composite: the luminance
texture at 128 px in the canonical frame (normalised to zero mean, unit std inside the face),
its mean identity code, the number of people in it, their gender (1 = male) and mean age.

    python -m faceanon.models.facespace.bank [--k 8]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ...evaluate.datasets import DEFAULT_DATA
from ...io import read_image
from . import geometry as geo
from .data import collect, landmarks
from .model import MODEL_FILE, FaceSpace

BANK_FILE = Path(__file__).with_name("composites.npz")


def group_identities(codes: np.ndarray, k: int) -> list[np.ndarray]:
    """Groups of exactly k identities (the remainder joins the nearest groups)."""
    n = len(codes)
    free = np.ones(n, bool)
    groups = []
    d2 = ((codes[:, None, :] - codes[None, :, :]) ** 2).sum(-1)
    order = np.argsort(-np.linalg.norm(codes, axis=1))  # start from distinctive identities
    for i in order:
        if not free[i] or free.sum() < k:
            continue
        cand = np.where(free)[0]
        members = cand[np.argsort(d2[i, cand])[:k]]
        free[members] = False
        groups.append(members)
    for i in np.where(free)[0]:  # leftovers make their nearest group larger (still >= k)
        best = min(range(len(groups)), key=lambda g: d2[i, groups[g]].mean())
        groups[best] = np.append(groups[best], i)
    return groups


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--cache", default=".cache/facespace")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--out", default=str(BANK_FILE))
    args = ap.parse_args(argv)
    t0 = time.time()
    fs = FaceSpace(MODEL_FILE)
    samples = collect(Path(args.data))
    pts68 = landmarks(samples, Path(args.cache) / "landmarks.npz")
    c = fs.canon
    ids_map = fs.canon_ids
    mask = ids_map >= 0
    from .attributes import attribute_labels

    _, logits, ages = attribute_labels(fs, samples, pts68, Path(args.cache))
    found = [(s, p) for s, p in zip(samples, pts68) if not np.isnan(p[0, 0])]
    per_identity: dict[str, list] = {}
    for (s, p), logit, age in zip(found, logits, ages):
        rgb = read_image(s.path).rgb
        enc = fs.encode(rgb, p)
        grey = geo.luminance(rgb)
        tex, _ = geo.warp(grey, enc.points, fs.mean_shape, fs.face_triangles, (c, c), ids=ids_map)
        g = tex[mask]
        tex = np.where(mask, (tex - g.mean()) / (g.std() + 1e-6), 0).astype(np.float32)
        per_identity.setdefault(s.identity, []).append((enc.identity, tex, logit > 0, age))
    names = sorted(per_identity)
    codes = np.stack([np.mean([e[0] for e in per_identity[n]], 0) for n in names])
    textures = np.stack([np.mean([e[1] for e in per_identity[n]], 0) for n in names])
    male = np.array([np.mean([e[2] for e in per_identity[n]]) >= 0.5 for n in names])
    person_age = np.array([np.mean([e[3] for e in per_identity[n]]) for n in names], np.float32)
    print(f"{len(names)} identities encoded, {male.mean():.2f} male ({time.time() - t0:.0f}s)", file=sys.stderr)
    groups = []
    for gender in (False, True):
        members = np.where(male == gender)[0]
        groups += [members[g] for g in group_identities(codes[members], args.k)]
    comp_tex = np.stack([textures[g].mean(0) for g in groups])
    comp_codes = np.stack([codes[g].mean(0) for g in groups]).astype(np.float32)
    sizes = np.array([len(g) for g in groups], np.int32)
    assert sizes.min() >= args.k
    # float16 halves the file; the detail band needs no more precision
    genders = np.array([int(male[g[0]]) for g in groups], np.int8)
    comp_ages = np.array([person_age[g].mean() for g in groups], np.float32)
    np.savez_compressed(args.out, textures=comp_tex.astype(np.float16), codes=comp_codes, sizes=sizes,
                        genders=genders, ages=comp_ages, mask=mask, k=args.k)
    print(f"saved {args.out}: {len(groups)} composites of >= {args.k} people ({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
