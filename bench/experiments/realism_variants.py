"""Experiment (issue 15): which texture source makes `cfa` pass the realism judge?

CelebA dev crops: the judge's fake people are anonymized with each variant, its real people stay
as they are (evaluate/realism.py, same split as `faceanon evaluate`). Donors come from other
CelebA people than the judged ones. Prints C2ST and SFace similarity to the original per variant
and writes a sheet per variant to /tmp.

    python bench/experiments/realism_variants.py [--people 100] [--per 4] [--variants cfa,donor1,mosaic]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from faceanon.align import Landmarker  # noqa: E402
from faceanon.anonymize import identity as idm  # noqa: E402
from faceanon.detect import create_detector  # noqa: E402
from faceanon.detect.base import main_face  # noqa: E402
from faceanon.evaluate.realism import CropSet, judge_crop, judge_half, two_sample_test  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.facespace.model import canonical_detail, composite_bank, face_space  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402
from faceanon.viz import grid, save_png  # noqa: E402

ROOT = REPO.parent / "shared" / "data" / "celeba_faces" / "images"


def load(paths, det, lm):
    out = []
    for p in paths:
        rgb = read_image(p).rgb
        f = main_face(det(rgb), rgb.shape)
        if f is None:
            continue
        lm(rgb, [f])
        out.append((p, rgb, f))
    return out


def part_masks(fs):
    """Soft canonical-frame masks (eyes+brows, nose, mouth, rest of the skin) summing to 1."""
    c = fs.canon
    p = fs.mean_shape

    def hull(idx, grow):
        m = np.zeros((c, c), np.uint8)
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(p[idx]).astype(np.int32)), 1)
        return cv2.dilate(m, np.ones((grow, grow), np.uint8)).astype(np.float32)

    eyes = np.maximum(hull(list(range(17, 22)) + list(range(36, 42)), 7), hull(list(range(22, 27)) + list(range(42, 48)), 7))
    nose = hull(list(range(27, 36)), 5) * (1 - eyes)
    mouth = hull(list(range(48, 68)), 9) * (1 - eyes) * (1 - nose)
    masks = [cv2.GaussianBlur(m, (0, 0), 3) for m in (eyes, nose, mouth)]
    rest = np.clip(1 - sum(masks), 0, 1)
    stack = np.stack(masks + [rest])
    return stack / stack.sum(0, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--per", type=int, default=4)
    ap.add_argument("--variants", default="original,blur,cfa,donor1,mosaic")
    args = ap.parse_args()
    det, lm = create_detector("yunet"), Landmarker(68)
    fs = face_space()
    people = sorted(p.name for p in ROOT.iterdir())
    judged, donor_people = people[: args.people], people[args.people :]
    real_paths = [q for n in judged if judge_half(n) == "real" for q in sorted((ROOT / n).glob("*.jpg"))[: args.per]]
    fake_paths = [q for n in judged if judge_half(n) == "fake" for q in sorted((ROOT / n).glob("*.jpg"))[: args.per]]
    real = CropSet.empty()
    for p, rgb, f in load(real_paths, det, lm):
        real.add(judge_crop(rgb, f.box), p.parent.name)
    fakes = load(fake_paths, det, lm)
    # donor bank: one entry per donor photo (real fine detail, not an average)
    donors = load([q for n in donor_people for q in sorted((ROOT / n).glob("*.jpg"))[:6]], det, lm)
    d_codes, d_detail, d_who = [], [], []
    for p, rgb, f in donors:
        enc = fs.encode(rgb, f.landmarks68)
        d_codes.append(enc.identity)
        d_detail.append(canonical_detail(fs, rgb, enc)[0])
        d_who.append(p.parent.name)
    d_codes, d_detail, d_who = np.stack(d_codes), np.stack(d_detail), np.array(d_who)
    from faceanon.models.facespace.model import attribute_probe, bridge_scores, GLASSES_BRIDGE

    probe = attribute_probe()
    d_male = np.array([probe.male(c) for c in d_codes])
    d_ok = bridge_scores(fs, d_detail) <= GLASSES_BRIDGE
    masks = part_masks(fs)
    print(f"{len(real)} real, {len(fakes)} fake, {len(d_codes)} donor photos of {len(set(d_who))} people", file=sys.stderr)

    def donor_order(new, z0):
        allowed = d_ok & (d_male == probe.male(z0))
        d = np.where(allowed, np.linalg.norm(d_codes - new, axis=1), np.inf)
        return np.argsort(d)

    def distinct_people(order, k):
        out, seen = [], set()
        for i in order:
            if d_who[i] not in seen:
                out.append(i)
                seen.add(d_who[i])
            if len(out) == k:
                break
        return out

    orig_target = idm.CFA.target

    def target_donor1(self, fs_, enc):
        t = orig_target(self, fs_, enc)
        i = distinct_people(donor_order(t.code, enc.identity), 1)[0]
        return idm.Target(t.code, d_detail[i], t.amount)

    def target_mosaic(self, fs_, enc):
        t = orig_target(self, fs_, enc)
        pick = distinct_people(donor_order(t.code, enc.identity), 4)
        detail = sum(m * d_detail[i] for m, i in zip(masks, pick))
        return idm.Target(t.code, detail.astype(np.float32), t.amount)

    from faceanon.models.facespace import model as fsm

    orig_deltas, orig_lum = fsm.FaceSpace.deltas, fsm.apply_luminance_change

    def deltas_no_texture(self, enc, new):
        d_shape, d_tex = orig_deltas(self, enc, new)
        return d_shape, np.zeros_like(d_tex)

    def lab_luminance_change(rgb, delta):
        """The change on Lab lightness only: chroma (a, b) stays the skin's own."""
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        lab[..., 0] = np.clip(lab[..., 0] + delta * (100 / 255), 0, 100)
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255, 0, 255).round().astype(np.uint8)

    sface = recognizer("sface")
    results = {}
    for variant in args.variants.split(","):
        base = variant.split("+")[0]
        idm.CFA.target = {"donor1": target_donor1, "mosaic": target_mosaic}.get(base, orig_target)
        fsm.FaceSpace.deltas = deltas_no_texture if "+notex" in variant else orig_deltas
        fsm.apply_luminance_change = lab_luminance_change if "+lab" in variant else orig_lum
        method = {"original": "blur", "donor1": "cfa", "mosaic": "cfa"}.get(base, base)
        pipe = Pipeline(PipelineConfig(method=method))
        fake, sims, tiles, rendered = CropSet.empty(), [], [], 0
        t0 = time.time()
        for p, rgb, f in fakes:
            if variant == "original":
                out, faces = rgb, []
            else:
                out, faces = pipe.anonymize(rgb)
            rendered += sum(1 for g in faces if g.extra.get("method") == method and "fallback" not in g.extra)
            fake.add(judge_crop(out, f.box), p.parent.name)
            sims.append(float(sface.embed(out, f) @ sface.embed(rgb, f)))
            if len(tiles) < 12:
                x1, y1, x2, y2 = f.scaled_box(1.5).astype(int).clip(0)
                tiles.append(np.concatenate([cv2.resize(im[y1:y2, x1:x2], (128, 128)) for im in (rgb, out)], 1))
        secs = time.time() - t0
        r = two_sample_test(real, fake)
        results[variant] = {"c2st": round(r["c2st"], 3), "ci": [round(r["c2st_low"], 3), round(r["c2st_high"], 3)],
                            "test": r["c2st_test"], "sface_self_sim": round(float(np.mean(sims)), 3),
                            "sface_above_0.363": round(float(np.mean(np.array(sims) > 0.363)), 3),
                            "rendered": rendered, "faces_per_s": round(len(fakes) / secs, 1)}
        print(variant, json.dumps(results[variant]), flush=True)
        save_png(Path(f"/tmp/realism_{variant.replace('+', '_')}.png"), grid(tiles, 4))
    idm.CFA.target = orig_target
    fsm.FaceSpace.deltas, fsm.apply_luminance_change = orig_deltas, orig_lum
    return results


if __name__ == "__main__":
    main()
