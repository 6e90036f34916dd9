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

SIGMA, N_PARTS, SHAPE, FOREHEAD, GATE, TEX, OUTER = [4.0], [4], [False], [False], [False], [0.0], [False]
TONE, COLOUR_MATCH, SHARP, EVEN, FMOVE = [False], [False], [False], [False], [False]
ROOT = REPO.parent / "shared" / "data" / "celeba_faces" / "images"
WIDER_DONOR_PX = 96


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


def _mouth_open(p68):
    """Inner-lip gap over mouth width."""
    return float(np.linalg.norm(p68[66] - p68[62]) / max(np.linalg.norm(p68[64] - p68[60]), 1e-6))


def fsm_sigma():
    from faceanon.models.facespace import model

    return model.DETAIL_SIGMA


def _norm_tex(fs, rgb, enc):
    from faceanon.models.facespace import geometry as geo

    c, ids = fs.canon, fs.canon_ids
    own, _ = geo.warp(geo.luminance(rgb), enc.points, fs.mean_shape, fs.face_triangles, (c, c), ids=ids)
    inside = ids >= 0
    mu, sd = float(own[inside].mean()), float(own[inside].std() + 1e-6)
    return np.where(inside, (own - mu) / sd, 0).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--per", type=int, default=4)
    ap.add_argument("--variants", default="original,blur,cfa,donor1,mosaic")
    ap.add_argument("--wider-donors", action="store_true", help="add the WIDER dev photos' large faces to the donors")
    ap.add_argument("--key-suffix", default="", help="appended to the variant's name in the results file")
    ap.add_argument("--no-gate", action="store_true",
                    help="without the pipeline's recognizer gate (a new face still recognized gets the blur): the "
                         "variant's own realism and privacy, as the rows measured before the gate existed")
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
    # privacy as in `faceanon evaluate`: each person's first photo stays the reference, the others
    # are anonymized and scored against it at the CelebA FAR 1e-3 thresholds
    thresholds = json.loads((REPO / "report/celeba/original.json").read_text())["summary"]["thresholds"]
    recs = {name: recognizer(name) for name in ("sface", "dlib")}
    reference, first = {}, set()
    for p, rgb, f in fakes:
        if p.parent.name not in reference:
            reference[p.parent.name] = {n: r.embed(rgb, f) for n, r in recs.items()}
            first.add(p)
    fakes = [x for x in fakes if x[0] not in first]
    # donor bank: one entry per donor photo (real fine detail, not an average)
    donors = load([q for n in donor_people for q in sorted((ROOT / n).glob("*.jpg"))[:6]], det, lm)
    if args.wider_donors:
        # more donors: the faces of the WIDER dev photos at least WIDER_DONOR_PX tall (other
        # people than CelebA's, in the wild), frontal enough for the render gate's turn check
        from faceanon.anonymize.render_gate import turn as face_turn

        for q in sorted((REPO.parent / "shared/data/wider_face_val_subset/images").rglob("*.jpg")):
            rgb = read_image(q).rgb
            big = [f for f in det(rgb) if f.height >= WIDER_DONOR_PX]
            if big:
                lm(rgb, big)
                donors += [(q, rgb, f) for f in big if abs(face_turn(f)) <= 0.2]
    d_codes, d_detail, d_who, d_norm = [], [], [], []
    for p, rgb, f in donors:
        enc = fs.encode(rgb, f.landmarks68)
        d_codes.append(enc.identity)
        detail = canonical_detail(fs, rgb, enc)[0]
        d_detail.append(detail)
        d_who.append(p.parent.name)
        # the whole normalised luminance texture, for other band splits
        d_norm.append(detail + cv2.GaussianBlur(_norm_tex(fs, rgb, enc), (0, 0), fsm_sigma()))
    d_codes, d_detail, d_who, d_norm = np.stack(d_codes), np.stack(d_detail), np.array(d_who), np.stack(d_norm)
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

    def band(tex, sigma):
        return tex - cv2.GaussianBlur(tex, (0, 0), sigma)

    def target_swap(self, fs_, enc):
        """Donor mosaic at band SIGMA (patched below), towards the donors' own mean code."""
        t = orig_target(self, fs_, enc)
        pick = distinct_people(donor_order(t.code, enc.identity), N_PARTS[0])
        ms = masks if len(pick) == 4 else [np.ones_like(masks[0])]
        detail = sum(m * band(d_norm[i], SIGMA[0]) for m, i in zip(ms, pick))
        return idm.Target(t.code, detail.astype(np.float32), 1.0)

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

    def deltas_no_shape(self, enc, new):
        d_shape, d_tex = orig_deltas(self, enc, new)
        return np.zeros_like(d_shape), d_tex

    def deltas_shape_only(self, enc, new):
        d_shape, d_tex = orig_deltas(self, enc, new)
        return d_shape, np.zeros_like(d_tex)

    def eye_region(grow: int) -> np.ndarray:
        """The eye openings in the 64 px texture frame grown by ``grow`` px, feathered, in [0, 1]."""
        keep = np.zeros((fs.tex, fs.tex), np.float32)
        points = fs.mean_shape * (fs.tex / fs.canon)
        for idx in (range(36, 42), range(42, 48)):
            keep = np.maximum(keep, fsm._polygon_mask(points[list(idx)], (fs.tex, fs.tex)))
        grown = cv2.GaussianBlur(cv2.dilate(keep, np.ones((grow, grow), np.uint8)), (0, 0), grow / 3)
        return np.clip(grown / max(float(grown.max()), 1e-6), 0, 1)

    EYES = eye_region(9)

    def inner_face() -> np.ndarray:
        """Brows, eyes, nose and mouth (their hull) in the 64 px texture frame, feathered, in [0, 1]."""
        points = fs.mean_shape[17:68] * (fs.tex / fs.canon)
        hull = cv2.convexHull(np.round(points).astype(np.int32)).reshape(-1, 2).astype(np.float32)
        inner = fsm._polygon_mask(hull, (fs.tex, fs.tex))
        return np.clip(cv2.GaussianBlur(inner, (0, 0), 2.0), 0, 1)

    INNER = inner_face()

    def deltas_eyes_own(self, enc, new):
        # the eye region keeps its own mid band: the texture change drew pale rings round the
        # eyes, like ghost spectacles (docs/realism.md)
        d_shape, d_tex = orig_deltas(self, enc, new)
        return d_shape, d_tex * (1 - EYES)

    def lab_luminance_change(rgb, delta):
        """The change on Lab lightness only: chroma (a, b) stays the skin's own."""
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        lab[..., 0] = np.clip(lab[..., 0] + delta * (100 / 255), 0, 100)
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255, 0, 255).round().astype(np.uint8)

    # colour face swap: real donor pixels (whole inner face) warped to the target's geometry and
    # put in with Poisson blending (cv2.seamlessClone matches colour and light at the border)
    donor_imgs = [(rgb, f) for _, rgb, f in donors]
    from faceanon.anonymize.render_gate import turn
    from faceanon.models.facespace import geometry as geo

    d_turn = np.array([turn(f) for _, f in donor_imgs])

    def inner_region(rgb, f):
        """The face inside the hull of its jaw and brows, shrunk by 2 px (a boolean image)."""
        inner = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(inner, cv2.convexHull(np.round(f.landmarks68[:27]).astype(np.int32)), 1)
        return cv2.erode(inner, np.ones((5, 5), np.uint8)) > 0

    def skin_lab(rgb, f):
        """Mean Lab colour of the inner face: skin tone and light."""
        inner = inner_region(rgb, f)
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        return lab[inner].mean(0) if inner.any() else lab.reshape(-1, 3).mean(0)

    d_lab = np.array([skin_lab(rgb, f) for rgb, f in donor_imgs])

    def sharpness(rgb, f):
        """Spread of the Laplacian inside the face, per face height (scale-free): soft photos low."""
        grey = geo.luminance(rgb.astype(np.float32))
        return float(cv2.Laplacian(grey, cv2.CV_32F)[inner_region(rgb, f)].std()) * f.height / 100

    def side_light(rgb, f):
        """Luminance difference between the left and the right half of the face: light from one side."""
        grey, inside = geo.luminance(rgb.astype(np.float32)), inner_region(rgb, f)
        mid = f.landmarks68[27:31, 0].mean()
        xs = np.arange(rgb.shape[1])[None, :].repeat(rgb.shape[0], 0)
        left, right = grey[inside & (xs < mid)], grey[inside & (xs >= mid)]
        return abs(float(left.mean()) - float(right.mean())) if len(left) and len(right) else 0.0

    d_sharp = np.array([sharpness(rgb, f) for rgb, f in donor_imgs])
    d_side = np.array([side_light(rgb, f) for rgb, f in donor_imgs])
    d_mouth = np.array([_mouth_open(f.landmarks68) for _, f in donor_imgs])
    orig_apply = idm.CFA.apply

    def apply_colourswap(self, crop, face, rng):
        enc = fs.encode(crop, face.landmarks68)
        t = orig_target(self, fs, enc)
        allowed = d_ok & (d_male == probe.male(enc.identity))
        if TONE[0]:  # donors of the closest quarter in skin tone and light only
            tone = np.linalg.norm(d_lab - skin_lab(crop, face), axis=1)
            allowed &= tone <= np.percentile(tone[allowed], 25)
        if SHARP[0]:  # donors in focus: the sharper half of the bank
            allowed &= d_sharp >= np.median(d_sharp)
        if EVEN[0]:  # donors lit evenly: the half with the smallest left-right difference
            allowed &= d_side <= np.median(d_side)
        cost = (np.linalg.norm(d_codes - t.code, axis=1) / 10 + 4 * np.abs(d_turn - turn(face))
                + 4 * np.abs(d_mouth - _mouth_open(face.landmarks68)))
        order = np.argsort(np.where(allowed, cost, np.inf))[: (8 if GATE[0] else 1)]
        best = None
        for i in order:
            out, mask = swap_one(crop, face, enc, t, int(i))
            if not GATE[0]:
                return out, mask
            # recognizer gate: the first donor whose result neither recognizer matches to the
            # original (self-similarity under the FAR 1e-3 thresholds, less a margin)
            f2 = idm.Face(face.box, face.score, face.landmarks5)
            sims = {n: float(r.embed(out, f2) @ r.embed(crop, f2)) for n, r in recs.items()}
            score = max(sims[n] - thresholds[n] for n in recs)
            if best is None or score < best[0]:
                best = (score, out, mask)
            if score < -0.05:
                break
        return best[1], best[2]

    def swap_one(crop, face, enc, t, i):
        drgb, dface = donor_imgs[i]
        src, dst = geo.face_points(dface.landmarks68), geo.face_points(face.landmarks68)
        if SHAPE[0]:
            # the identity's geometry first (jaw line, forehead, feature layout: what both
            # recognizers key on), then the donor's pixels into that new geometry
            d_shape, _ = fs.deltas(enc, t.code)
            if FMOVE[0]:  # the forehead and hairline moved as `cfa` moves them (down only under a cap or hair)
                own_n, _ = fsm.canonical_texture(fs, crop, enc)
                d_shape = fsm.move_forehead(fs, d_shape, down_only=fsm.forehead_covered(fs, own_n)).reshape(d_shape.shape)
            region, alpha, (bx0, by0, bx1, by1) = fs.render(crop, enc, d_shape, np.zeros((fs.tex, fs.tex), np.float32))
            crop = crop.copy()
            a = alpha[..., None]
            crop[by0:by1, bx0:bx1] = (region * a + crop[by0:by1, bx0:bx1] * (1 - a)).round().astype(np.uint8)
            dst = geo.apply_affine(cv2.invertAffineTransform(enc.to_canon), enc.shape.reshape(-1, 2) + d_shape)
        h, w = crop.shape[:2]
        warped, cover = geo.warp(drgb, src, dst, fs.face_triangles, (h, w))
        inner = np.zeros((h, w), np.uint8)
        hull = cv2.convexHull(np.round(dst if FOREHEAD[0] else dst[list(range(0, 27))]).astype(np.int32))
        cv2.fillConvexPoly(inner, hull, 255)
        r = max(2, int(0.04 * face.height))
        inner = cv2.erode(inner, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) * (cover > 0)
        ys, xs = np.nonzero(inner)
        if len(ys) < 50:
            raise idm.CannotAnonymize("no room") if hasattr(idm, "CannotAnonymize") else RuntimeError("no room")
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        centre = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
        if COLOUR_MATCH[0]:
            # instead of Poisson blending (which pulled dark hair and background colours into the
            # face along the border): the donor's Lab mean and spread matched to the face's inside
            # the region, then a feathered alpha blend
            lab_d = cv2.cvtColor(warped.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
            lab_t = cv2.cvtColor(crop.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
            sel = inner > 0
            mu_d, sd_d = lab_d[sel].mean(0), lab_d[sel].std(0) + 1e-3
            mu_t, sd_t = lab_t[sel].mean(0), lab_t[sel].std(0) + 1e-3
            matched = cv2.cvtColor(((lab_d - mu_d) * (sd_t / sd_d) + mu_t).astype(np.float32), cv2.COLOR_Lab2RGB)
            alpha = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), r)[..., None]
            out = np.clip((matched * 255) * alpha + crop * (1 - alpha), 0, 255).round().astype(np.uint8)
        else:
            out = cv2.seamlessClone(np.ascontiguousarray(warped), np.ascontiguousarray(crop), inner, centre, cv2.NORMAL_CLONE)
        mask = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), r / 2)
        if TEX[0] and SHAPE[0]:
            # the identity pattern's texture change on top, drawn in the new geometry
            _, d_tex = fs.deltas(enc, t.code)
            if OUTER[0]:  # the texture change on cheeks, jaw and forehead only: the donor's inner face stays
                d_tex = d_tex * (1 - INNER)
            enc2 = fs.encode(out, dst[:68])
            region, alpha, (bx0, by0, bx1, by1) = fs.render(out, enc2, np.zeros_like(d_shape), d_tex * TEX[0])
            out = out.copy()
            a = alpha[..., None]
            out[by0:by1, bx0:bx1] = (region * a + out[by0:by1, bx0:bx1] * (1 - a)).round().astype(np.uint8)
            mask = np.maximum(mask, cv2.GaussianBlur(np.pad(alpha, ((by0, crop.shape[0] - by1), (bx0, crop.shape[1] - bx1))), (0, 0), 1))
        return out, mask

    sface = recognizer("sface")
    results = {}
    for variant in args.variants.split(","):
        base = variant.split("+")[0]
        idm.CFA.target = {"donor1": target_donor1, "mosaic": target_mosaic, "swap": target_swap}.get(base, orig_target)
        SIGMA[0] = float(params.pop("sigma", 4)) if (params := dict(p.split("=") for p in variant.split("+") if "=" in p)) else 4.0
        N_PARTS[0] = int(params.pop("parts", 4))
        fsm.DETAIL_SIGMA = SIGMA[0]
        idm.CFA.apply = apply_colourswap if base == "colourswap" else orig_apply
        SHAPE[0], FOREHEAD[0], GATE[0] = "+shape" in variant, "+forehead" in variant, "+gate" in variant
        OUTER[0], TONE[0], COLOUR_MATCH[0] = "+outer" in variant, "+tone" in variant, "+match" in variant
        SHARP[0], EVEN[0], FMOVE[0] = "+sharp" in variant, "+even" in variant, "+fmove" in variant
        TEX[0] = float(params.pop("tex", 0))
        fsm.FaceSpace.deltas = (deltas_no_texture if "+notex" in variant else
                                deltas_no_shape if "+noshape" in variant else
                                deltas_eyes_own if "+eyesown" in variant else orig_deltas)
        if "+nodetail" in variant:
            idm.CFA.target = lambda self, fs_, enc, f=idm.CFA.target: idm.Target(f(self, fs_, enc).code, None, 0.0)
        fsm.apply_luminance_change = lab_luminance_change if "+lab" in variant else orig_lum
        method = {"original": "blur", "donor1": "cfa", "mosaic": "cfa", "swap": "cfa", "colourswap": "cfa"}.get(base, base)
        fsm.geo.WARP_INTERPOLATION = cv2.INTER_CUBIC if "+cubic" in variant else cv2.INTER_LINEAR
        pipe = Pipeline(PipelineConfig(method=method, params=params, recognizer_gate=not args.no_gate))
        if "+anygender" in variant:  # candidates chosen by the recognizer gate alone, not by gender too
            pipe._same_gender = lambda *a: True
        refine = None
        if "+refine" in variant:  # the SimGAN refiner of refiner.py (beside this script) on the drawn faces
            from refiner import refine_image as refine
        tpr = {n: [] for n in recs}
        fake, sims, tiles, rendered, why = CropSet.empty(), [], [], 0, {}
        t0 = time.time()
        for p, rgb, f in fakes:
            if variant == "original":
                out, faces = rgb, []
            else:
                out, faces = pipe.anonymize(rgb)
                if refine is not None:
                    out = refine(out, faces, method)
            rendered += sum(1 for g in faces if g.extra.get("method") == method and "fallback" not in g.extra)
            main = max(faces, key=lambda g: g.height, default=None)
            if main is not None and "fallback" in main.extra:
                # why the photo's largest face (the judged one) got the blur (the recognizer gate
                # names its attacker)
                why[main.extra["fallback"]] = why.get(main.extra["fallback"], 0) + 1
            fake.add(judge_crop(out, f.box), p.parent.name)
            sims.append(float(sface.embed(out, f) @ sface.embed(rgb, f)))
            for n, r in recs.items():
                tpr[n].append(float(r.embed(out, f) @ reference[p.parent.name][n]) > thresholds[n])
            if len(tiles) < 12:
                x1, y1, x2, y2 = f.scaled_box(1.5).astype(int).clip(0)
                tiles.append(np.concatenate([cv2.resize(im[y1:y2, x1:x2], (128, 128)) for im in (rgb, out)], 1))
        secs = time.time() - t0
        np.savez_compressed(f"/tmp/crops_{variant.replace('+', '_')}.npz", real=np.stack(real.crops), real_people=real.people,
                            fake=np.stack(fake.crops), fake_people=fake.people)
        r = two_sample_test(real, fake)
        results[variant] = {"c2st": round(r["c2st"], 3), "ci": [round(r["c2st_low"], 3), round(r["c2st_high"], 3)],
                            "test": r["c2st_test"], "tpr_sface": round(float(np.mean(tpr["sface"])), 3),
                            "tpr_dlib": round(float(np.mean(tpr["dlib"])), 3), "sface_self_sim": round(float(np.mean(sims)), 3),
                            "sface_above_0.363": round(float(np.mean(np.array(sims) > 0.363)), 3),
                            "rendered": rendered, "of": len(fakes), "gate": not args.no_gate, "fallbacks": why,
                            "faces_per_s": round(len(fakes) / secs, 1)}
        print(variant, json.dumps(results[variant]), flush=True)
        store = REPO / "bench/results/realism_variants_celeba.json"
        saved = json.loads(store.read_text()) if store.exists() else {}
        saved[variant + args.key_suffix] = results[variant]
        store.write_text(json.dumps(saved, indent=1) + "\n")
        save_png(Path(f"/tmp/realism_{variant.replace('+', '_')}.png"), grid(tiles, 4))
    idm.CFA.target, idm.CFA.apply = orig_target, orig_apply
    fsm.FaceSpace.deltas, fsm.apply_luminance_change = orig_deltas, orig_lum
    return results


if __name__ == "__main__":
    main()
