"""Where does the identity engines' Fréchet gap come from, and what would close it?

The realism figure of `faceanon evaluate` is the Fréchet distance (FD) between SFace features of
anonymized faces and of real faces, beside the same distance between two real sets. `cfa` sits
well above the reference. This bench renders the same LFW probes
- with parts of `cfa`'s change switched on one at a time,
- with `cfa` at smaller angles (less identity change),
- with a *real* person's identity instead of a synthetic one: the code and fine detail of a
  CelebA face rendered by the engine, and a classical face swap that pastes a real CelebA
  person's whole inner face (68 points and the forehead band, same gender by the attribute
  probe) onto the probe's landmarks, light-matched and Poisson-blended,
and gives for each the FD (split into its mean term |mu_a - mu_r|^2 and the feature spread, the
trace of the covariance) beside its privacy: TPR at FAR 1e-3 of the anonymized probe against its
pair partner (the same-person pairs of pairs_dev, as in `faceanon evaluate`), SFace and dlib:

    python bench/frechet_parts.py [--limit 300]

Reads the originals cache of `faceanon evaluate lfw` (report/cache); prints a table and writes
bench/results/frechet_parts.json. The reference rows use the same number of faces, so the
finite-sample part of FD is the same in every row.
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
from faceanon.align import Landmarker  # noqa: E402
from faceanon.anonymize.base import Anonymizer  # noqa: E402
from faceanon.anonymize.identity import CFA, IdentityReplacer, Target, paste_region  # noqa: E402
from faceanon.detect import create_detector  # noqa: E402
from faceanon.detect.base import main_face  # noqa: E402
from faceanon.evaluate import metrics  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA, load_dataset  # noqa: E402
from faceanon.evaluate.protocol import RECOGNIZERS, Evaluator  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.facespace import geometry as geo  # noqa: E402
from faceanon.models.facespace.model import attribute_probe, canonical_detail, face_space, render_identity  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402


class CFAPart(CFA):
    """`cfa` at its defaults with only some parts of the change drawn."""

    def __init__(self, shape: bool, texture: bool, detail: bool) -> None:
        super().__init__()
        self.parts = shape, texture, detail

    def apply(self, crop, face, rng):
        fs = face_space()
        enc = fs.encode(crop, face.landmarks68)
        t = self.target(fs, enc)
        d_shape, d_tex = fs.deltas(enc, t.code)
        use_shape, use_tex, use_detail = self.parts
        return paste_region(crop, *render_identity(
            fs, crop, enc, d_shape if use_shape else 0 * d_shape, d_tex if use_tex else 0 * d_tex,
            t.detail if use_detail else None, t.amount))


class RealDonor(IdentityReplacer):
    """Identity code and fine detail of one real CelebA face (a different one per probe)."""

    def __init__(self, donors: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.donors = donors
        self.calls = 0

    def target(self, fs, enc):
        code, detail = self.donors[self.calls % len(self.donors)]
        self.calls += 1
        return Target(code, detail)


class RealDonorPaste(Anonymizer):
    """A classical face swap with real people: the whole inner face of a CelebA image of the
    probe's gender (by the attribute probe), warped onto the probe's 78 face points, matched to
    its light (mean and std per channel inside the face; greyscale for greyscale photos) and
    Poisson-blended. The best a swap of the inner face can look, since the face is a real one."""

    needs_landmarks68 = True

    def __init__(self, donors: list[tuple[np.ndarray, np.ndarray, bool]]) -> None:
        self.donors = donors
        self.calls = 0

    def apply(self, crop, face, rng):
        fs = face_space()
        pts = geo.face_points(face.landmarks68)
        male = attribute_probe().male(fs.encode(crop, face.landmarks68).identity)
        same = [d for d in self.donors if d[2] == male] or self.donors
        donor, donor_pts, _ = same[self.calls % len(same)]
        self.calls += 1
        if (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all():
            donor = np.repeat(np.clip(geo.luminance(donor), 0, 255).astype(np.uint8)[..., None], 3, 2)
        warped, cover = geo.warp(donor, donor_pts, pts, fs.face_triangles, crop.shape[:2])
        mask = cv2.erode((cover > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
        inside = mask > 0
        if inside.sum() < 16:
            return crop.copy(), np.zeros(crop.shape[:2], np.float32)
        w, o = warped.astype(np.float32), crop.astype(np.float32)
        for c in range(3):
            w[..., c] = (w[..., c] - w[..., c][inside].mean()) / (w[..., c][inside].std() + 1e-6) \
                * o[..., c][inside].std() + o[..., c][inside].mean()
        ys, xs = np.nonzero(mask)
        centre = (int(xs.min() + xs.max()) // 2, int(ys.min() + ys.max()) // 2)
        out = cv2.seamlessClone(np.clip(w, 0, 255).astype(np.uint8), crop, mask * 255, centre, cv2.NORMAL_CLONE)
        return out, cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(np.float32)


def celeba_faces(n: int):
    """(image, face with 68 landmarks) for n CelebA dev images spread over the identities."""
    files = sorted((DEFAULT_DATA / "celeba_faces" / "images").glob("*/*.jpg"))
    det, lm = create_detector("yunet"), Landmarker(68)
    for f in files[:: max(1, len(files) // n)]:
        rgb = read_image(f).rgb
        face = main_face(det(rgb), rgb.shape)
        if face is not None:
            lm(rgb, [face])
            yield rgb, face


def celeba_donors(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    fs = face_space()
    out = []
    for rgb, face in celeba_faces(n):
        enc = fs.encode(rgb, face.landmarks68)
        out.append((enc.identity, canonical_detail(fs, rgb, enc)[0]))
    return out


def paste_donors(n: int) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    fs = face_space()
    return [(rgb, geo.face_points(face.landmarks68), attribute_probe().male(fs.encode(rgb, face.landmarks68).identity))
            for rgb, face in celeba_faces(n)]


def tpr(ev: Evaluator, pairs, feats: list[np.ndarray], rec: str) -> float:
    """Share of anonymized probes the recognizer still matches to their pair partner."""
    sims = [float(e @ getattr(ev.cache.entries[a], rec)) for e, (a, _) in zip(feats, pairs)]
    return metrics.accept_rate(sims, ev.gallery.thresholds[rec])


def real_sets(ev: Evaluator, n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per recognizer, the features of two disjoint sets of n real gallery faces, none of them a
    probe: chosen as `faceanon evaluate` chooses its realism reference."""
    probes = {b for _, b in ev.dataset.same}
    pool = np.array([i for i, rel in enumerate(ev.gallery.rels) if rel not in probes])
    pool = np.random.default_rng(0).permutation(pool)
    return {rec: (ev.gallery.emb[rec][pool[:n]], ev.gallery.emb[rec][pool[n : 2 * n]]) for rec in RECOGNIZERS}


def anonymized_features(ev: Evaluator, pairs, anonymizer, keep: int = 0):
    """Each recognizer's features of every probe anonymized by ``anonymizer``, and the first
    ``keep`` (original, anonymized) images to look at."""
    pipeline = Pipeline(PipelineConfig(method="cfa"))
    pipeline.anonymizer = anonymizer
    feats = {rec: [] for rec in RECOGNIZERS}
    samples = []
    for _, b in pairs:
        original, anon, _, _ = ev.anonymize(pipeline, b)
        for rec, out in feats.items():
            out.append(recognizer(rec).embed(anon, ev.cache.entries[b].face))
        if len(samples) < keep:
            samples.append((original, anon))
    return feats, samples


def parts(x: np.ndarray, real: np.ndarray) -> dict:
    return {"fd": metrics.frechet_distance(x, real), "mean_term": float(((x.mean(0) - real.mean(0)) ** 2).sum()),
            "spread": float(np.trace(np.cov(x, rowvar=False)))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--out", default=str(REPO / "bench/results/frechet_parts.json"))
    args = ap.parse_args()
    ev = Evaluator(load_dataset("lfw"), REPO / "report" / "cache", progress=False)
    pairs = ev.pairs(args.limit)
    n = len(pairs)
    real = real_sets(ev, n)
    real_1, real_2 = real["sface"]
    # The same FD in dlib's feature space: is the gap SFace's own view, or does dlib see it too?
    dlib_1, dlib_2 = real["dlib"]
    originals = {rec: [getattr(ev.cache.entries[b], rec) for _, b in pairs] for rec in RECOGNIZERS}
    rows = {"real vs real (reference)": {**parts(real_2, real_1), "fd_dlib": metrics.frechet_distance(dlib_2, dlib_1)},
            "originals (probes, untouched)": {**parts(np.stack(originals["sface"]), real_1),
                                              "fd_dlib": metrics.frechet_distance(np.stack(originals["dlib"]), dlib_1),
                                              "tpr_sface": tpr(ev, pairs, originals["sface"], "sface"),
                                              "tpr_dlib": tpr(ev, pairs, originals["dlib"], "dlib")}}
    variants = {
        "cfa at 45 degrees": CFA(angle=45),
        "cfa at 90 degrees": CFA(angle=90),
        "cfa (all parts)": CFAPart(True, True, True),
        "cfa: geometry only": CFAPart(True, False, False),
        "cfa: code texture only": CFAPart(False, True, False),
        "cfa: composite detail only": CFAPart(False, False, True),
        "real donor (code + own detail)": RealDonor(celeba_donors(150)),
        "real donor, whole inner face pasted": RealDonorPaste(paste_donors(300)),
    }
    for name, anonymizer in variants.items():
        feats, _ = anonymized_features(ev, pairs, anonymizer)
        self_sims = [float(e @ o) for e, o in zip(feats["sface"], originals["sface"])]
        rows[name] = {**parts(np.stack(feats["sface"]), real_1), "self_similarity": float(np.mean(self_sims)),
                      "fd_dlib": metrics.frechet_distance(np.stack(feats["dlib"]), dlib_1),
                      "tpr_sface": tpr(ev, pairs, feats["sface"], "sface"), "tpr_dlib": tpr(ev, pairs, feats["dlib"], "dlib")}
    print(f"{n} LFW probes; FD to a real set of the same size")
    print(f"{'':38s} {'FD':>6s} {'mean':>6s} {'spread':>6s} {'self-sim':>8s} {'TPR SFace':>9s} {'dlib':>6s} {'FD dlib':>7s}")
    nan = float("nan")
    for name, r in rows.items():
        print(f"{name:38s} {r['fd']:6.3f} {r['mean_term']:6.3f} {r['spread']:6.3f} {r.get('self_similarity', nan):8.3f}"
              f" {r.get('tpr_sface', nan):9.3f} {r.get('tpr_dlib', nan):6.3f} {r['fd_dlib']:7.3f}")
    Path(args.out).write_text(json.dumps({"pairs": n, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
