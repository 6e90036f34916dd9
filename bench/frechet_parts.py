"""Where does the identity engines' Fréchet gap come from?

The realism figure of `faceanon evaluate` is the Fréchet distance (FD) between SFace features of
anonymized faces and of real faces, beside the same distance between two real sets. `cfa` sits
well above the reference. This bench renders the same LFW probes with parts of `cfa`'s change
switched on one at a time, and with a *real* person's identity (code and fine detail of a CelebA
face, one per probe) instead of a synthetic one, and splits each FD into its mean term
|mu_a - mu_r|^2 and the feature spread (trace of the covariance):

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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.align import Landmarker  # noqa: E402
from faceanon.anonymize.identity import CFA, IdentityReplacer, Target, paste_region  # noqa: E402
from faceanon.detect import create_detector  # noqa: E402
from faceanon.detect.base import main_face  # noqa: E402
from faceanon.evaluate import metrics  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA, load_dataset  # noqa: E402
from faceanon.evaluate.protocol import Evaluator  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.facespace.model import canonical_detail, face_space, render_identity  # noqa: E402
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


def celeba_donors(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    files = sorted((DEFAULT_DATA / "celeba_faces" / "images").glob("*/*.jpg"))
    det, lm, fs = create_detector("yunet"), Landmarker(68), face_space()
    out = []
    for f in files[:: max(1, len(files) // n)]:
        rgb = read_image(f).rgb
        face = main_face(det(rgb), rgb.shape)
        if face is None:
            continue
        lm(rgb, [face])
        enc = fs.encode(rgb, face.landmarks68)
        out.append((enc.identity, canonical_detail(fs, rgb, enc)[0]))
    return out


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
    probes = {b for _, b in ev.dataset.same}
    pool = np.array([i for i, rel in enumerate(ev.gallery.rels) if rel not in probes])
    pool = np.random.default_rng(0).permutation(pool)
    emb = ev.gallery.emb["sface"]
    real_1, real_2 = emb[pool[:n]], emb[pool[n : 2 * n]]
    rows = {"real vs real (reference)": parts(real_2, real_1),
            "originals (probes, untouched)": parts(np.stack([ev.cache.entries[b].sface for _, b in pairs]), real_1)}
    variants = {
        "cfa (all parts)": CFAPart(True, True, True),
        "cfa: geometry only": CFAPart(True, False, False),
        "cfa: code texture only": CFAPart(False, True, False),
        "cfa: composite detail only": CFAPart(False, False, True),
        "real donor (code + own detail)": RealDonor(celeba_donors(150)),
    }
    sface = recognizer("sface")
    for name, anonymizer in variants.items():
        pipeline = Pipeline(PipelineConfig(method="cfa"))
        pipeline.anonymizer = anonymizer
        feats, self_sims = [], []
        for _, b in pairs:
            _, anon, _, _ = ev.anonymize(pipeline, b)
            e = sface.embed(anon, ev.cache.entries[b].face)
            feats.append(e)
            self_sims.append(float(e @ ev.cache.entries[b].sface))
        rows[name] = {**parts(np.stack(feats), real_1), "self_similarity": float(np.mean(self_sims))}
    print(f"{n} LFW probes; FD to a real set of the same size")
    print(f"{'':34s} {'FD':>6s} {'mean':>6s} {'spread':>6s} {'self-sim':>8s}")
    for name, r in rows.items():
        print(f"{name:34s} {r['fd']:6.3f} {r['mean_term']:6.3f} {r['spread']:6.3f} {r.get('self_similarity', float('nan')):8.3f}")
    Path(args.out).write_text(json.dumps({"pairs": n, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
