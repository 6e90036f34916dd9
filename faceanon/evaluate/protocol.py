"""`faceanon evaluate`: the verification / re-identification / utility / realism protocol.

For every same-identity pair (a, b) the second image b is anonymized by the full pipeline
(detect -> anonymize -> compose) and compared with the untouched first image a. Recognizers
embed the anonymized face with the landmarks found on b's original, so a method cannot win
privacy merely by making the detector miss the face.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..align import Landmarker
from ..anonymize import ANONYMIZERS
from ..detect import create_detector
from ..io import read_image
from ..models.attributes import age_gender
from ..models.recognizers import recognizer
from ..pipeline import Pipeline, PipelineConfig
from ..types import Face
from . import metrics
from .datasets import PairSet, identity
from .originals import Original, OriginalsCache
from .realism import CropSet, judge_crop, judge_half, two_sample_test

RECOGNIZERS = ("sface", "dlib")
UTILITY_DETECTORS = ("yunet", "mtcnn", "dlib-hog")
FAR = 1e-3
# 1:N searches: the best-other-person score real faces exceed at this rate. Not 1e-3: the top
# 0.1 % of real searches are the datasets' duplicate photos filed under two names (SFace 1.0).
SEARCH_FPIR = 1e-2


@dataclass
class Gallery:
    rels: list[str]
    ids: np.ndarray
    emb: dict[str, np.ndarray]  # recognizer -> (n, d)
    thresholds: dict[str, float]
    impostors: dict[str, int]
    # 1:N: the best-other-person score that real-face searches exceed at rate SEARCH_FPIR
    search_thresholds: dict[str, float]

    def __post_init__(self) -> None:
        self.id_index = np.unique(self.ids, return_inverse=True)


def build_gallery(cache: OriginalsCache, rels: list[str], progress: bool) -> Gallery:
    originals = cache.ensure(rels, progress)
    keep = [r for r in rels if originals[r].face is not None]
    ids = np.array([identity(r) for r in keep])
    emb, thr, n_imp, search = {}, {}, {}, {}
    for rec in RECOGNIZERS:
        e = np.stack([getattr(originals[r], rec) for r in keep])
        emb[rec] = e
        imp = metrics.impostor_scores(e, list(ids))
        thr[rec] = metrics.far_threshold(imp, FAR)
        n_imp[rec] = int(len(imp))
        search[rec] = metrics.far_threshold(metrics.best_other_scores(e, ids), SEARCH_FPIR)
    return Gallery(keep, ids, emb, thr, n_imp, search)


def _clean(v):
    """Rounded floats for the JSON report; NaN (not computable) becomes null."""
    if isinstance(v, (float, np.floating)):
        return round(float(v), 4) if np.isfinite(v) else None
    return v


def spread(items: list, limit: int | None) -> list:
    """``limit`` items spread evenly over the list (all folds represented), in order."""
    if limit is None or limit >= len(items):
        return list(items)
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]


def _as_stored(anon: np.ndarray, greyscale: bool) -> np.ndarray:
    """What the file on disk would hold: greyscale sources are written back as greyscale."""
    if not greyscale:
        return anon
    from PIL import Image

    grey = np.asarray(Image.fromarray(anon).convert("L"))  # the conversion write_image applies
    return np.repeat(grey[:, :, None], 3, axis=2)


DEGRADATIONS = ("jpeg75", "downscale0.5")


def degrade(image: np.ndarray, how: str | None) -> np.ndarray:
    """What an anonymized photo becomes on its way to an attacker: re-compressed (JPEG quality
    75) or shrunk to half size (and brought back to the original size, so the original's
    landmarks still locate the face)."""
    if not how:
        return image
    import cv2

    if how == "jpeg75":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if how == "downscale0.5":
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    raise ValueError(f"unknown degradation {how!r}; choose from {', '.join(DEGRADATIONS)}")


def _box_slice(box: np.ndarray, shape) -> tuple[slice, slice]:
    h, w = shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    return slice(max(y1, 0), min(y2, h)), slice(max(x1, 0), min(x2, w))


def _iod(pts68: np.ndarray) -> float:
    return float(np.linalg.norm(pts68[36:42].mean(0) - pts68[42:48].mean(0)))


@dataclass
class PairResult:
    a: str
    b: str
    sim_orig: dict = field(default_factory=dict)  # recognizer -> sim(a, b original)
    sim_anon: dict = field(default_factory=dict)  # recognizer -> sim(a, b anonymized)
    self_sim: dict = field(default_factory=dict)  # recognizer -> sim(b original, b anonymized)
    rank: dict = field(default_factory=dict)
    best_other: dict = field(default_factory=dict)
    detected: dict = field(default_factory=dict)
    ssim: float = 0.0
    psnr: float = 0.0
    face_ssim: float = 0.0
    face_psnr: float = 0.0
    landmark_shift: float = float("nan")
    sharpness_ratio: float = float("nan")
    gender_kept: bool | None = None
    age_change: float = float("nan")
    seconds: float = 0.0
    faces: int = 0


class Evaluator:
    def __init__(self, dataset: PairSet, cache_dir: Path | None, progress: bool = True) -> None:
        self.dataset = dataset
        self.progress = progress
        cache_file = None if cache_dir is None else Path(cache_dir) / f"originals_{dataset.name}.pkl"
        self.cache = OriginalsCache(dataset.images, cache_file)
        self.gallery = build_gallery(self.cache, dataset.gallery(), progress)
        self._detectors = {name: create_detector(name) for name in UTILITY_DETECTORS}
        self.after: str | None = None  # degradation applied to anonymized images before scoring
        self._landmarker = Landmarker(68)

    def pairs(self, limit: int | None) -> list[tuple[str, str]]:
        usable = [(a, b) for a, b in self.dataset.same
                  if self.cache.entries.get(a) and self.cache.entries[a].face is not None
                  and self.cache.entries.get(b) and self.cache.entries[b].face is not None]
        return spread(usable, limit)

    def anonymize(self, pipeline: Pipeline, rel: str) -> tuple[np.ndarray, np.ndarray, int, float]:
        picture = read_image(self.dataset.images / rel)
        t = time.perf_counter()
        anon, faces = pipeline.anonymize(picture.rgb)
        seconds = time.perf_counter() - t
        return picture.rgb, degrade(_as_stored(anon, picture.greyscale), self.after), len(faces), seconds

    def similarity_only(self, pipeline: Pipeline, pairs: list[tuple[str, str]]) -> dict[str, float]:
        """Mean recognizer similarity between each original b and its anonymization (for the
        controllability curve), plus the TPR at the FAR threshold against a."""
        self_sims = {r: [] for r in RECOGNIZERS}
        anon_sims = {r: [] for r in RECOGNIZERS}
        for a, b in pairs:
            orig_b: Original = self.cache.entries[b]
            _, anon, _, _ = self.anonymize(pipeline, b)
            for rec in RECOGNIZERS:
                e = recognizer(rec).embed(anon, orig_b.face)
                self_sims[rec].append(float(e @ getattr(orig_b, rec)))
                anon_sims[rec].append(float(e @ getattr(self.cache.entries[a], rec)))
        out = {}
        for rec in RECOGNIZERS:
            out[f"{rec}_self_similarity"] = float(np.mean(self_sims[rec]))
            out[f"{rec}_tpr"] = metrics.accept_rate(anon_sims[rec], self.gallery.thresholds[rec])
        return out

    def evaluate_pair(self, pipeline: Pipeline, a: str, b: str) -> tuple[PairResult, np.ndarray, np.ndarray, np.ndarray]:
        orig_a, orig_b = self.cache.entries[a], self.cache.entries[b]
        face: Face = orig_b.face
        original, anon, n_faces, seconds = self.anonymize(pipeline, b)
        r = PairResult(a=a, b=b, seconds=seconds, faces=n_faces)
        sface_anon = None
        for rec in RECOGNIZERS:
            e_anon = recognizer(rec).embed(anon, face)
            if rec == "sface":
                sface_anon = e_anon
            e_a, e_b = getattr(orig_a, rec), getattr(orig_b, rec)
            r.sim_orig[rec] = float(e_a @ e_b)
            r.sim_anon[rec] = float(e_a @ e_anon)
            r.self_sim[rec] = float(e_b @ e_anon)
            r.rank[rec], r.best_other[rec] = metrics.identity_ranks(e_anon, self.gallery.emb[rec], self.gallery.ids,
                                                                    identity(b), self.gallery.id_index)
        for name, det in self._detectors.items():
            r.detected[name] = metrics.detected_at(det(anon), face.box)
        r.ssim, r.psnr = metrics.ssim(original, anon), metrics.psnr(original, anon)
        rows, cols = _box_slice(face.box, original.shape)
        r.face_ssim, r.face_psnr = metrics.ssim(original[rows, cols], anon[rows, cols]), metrics.psnr(original[rows, cols], anon[rows, cols])
        # Geometry kept? dlib 68 points on both, from the same (original) box.
        f_orig = Face(face.box, face.score, face.landmarks5)
        f_anon = Face(face.box, face.score, face.landmarks5)
        self._landmarker(original, [f_orig])
        self._landmarker(anon, [f_anon])
        r.landmark_shift = float(np.linalg.norm(f_orig.landmarks68 - f_anon.landmarks68, axis=1).mean() / max(_iod(f_orig.landmarks68), 1.0))
        s0 = metrics.sharpness(original[rows, cols])
        r.sharpness_ratio = metrics.sharpness(anon[rows, cols]) / s0 if s0 > 0 else float("nan")
        shape = recognizer("dlib").shape(original, face)
        att_o = age_gender().predict(original, face, shape)
        att_a = age_gender().predict(anon, face, shape)
        r.gender_kept = att_o.gender == att_a.gender
        r.age_change = abs(att_o.age - att_a.age)
        return r, original, anon, sface_anon

    def run(self, pipeline: Pipeline, limit: int | None = None) -> tuple[dict, list[PairResult], list]:
        pairs = self.pairs(limit)
        results: list[PairResult] = []
        samples = []
        sface_anon = []
        fakes = CropSet.empty()  # anonymized probes of the judge's "fake" people
        judged: set[str] = set()
        from tqdm import tqdm

        for a, b in tqdm(pairs, desc=f"{self.dataset.name} {pipeline.config.method}", unit="pair", file=sys.stderr,
                         disable=not self.progress, leave=False):
            r, original, anon, e = self.evaluate_pair(pipeline, a, b)
            results.append(r)
            sface_anon.append(e)
            if judge_half(identity(b)) == "fake" and b not in judged:
                judged.add(b)
                fakes.add(judge_crop(anon, self.cache.entries[b].face.box), identity(b))
            if len(samples) < 8 and all(b != seen[0] for seen in samples):
                samples.append((b, original, anon, self.cache.entries[b].face, r.self_sim["sface"]))
        summary = self.summarize(results, np.stack(sface_anon) if sface_anon else None)
        summary.update({k: _clean(v) for k, v in two_sample_test(self.real_crops(len(fakes)), fakes).items()})
        return summary, results, samples

    def real_crops(self, n: int) -> CropSet:
        """Up to ``n`` untouched faces of the judge's "real" people, chosen with a fixed seed from
        the whole dataset folder and cut exactly like the anonymized ones."""
        pool = [r for r in self.gallery.rels if judge_half(identity(r)) == "real"]
        out = CropSet.empty()
        for i in np.random.default_rng(1).permutation(len(pool))[:n]:
            rel = pool[int(i)]
            out.add(judge_crop(read_image(self.dataset.images / rel).rgb, self.cache.entries[rel].face.box), identity(rel))
        return out

    def summarize(self, results: list[PairResult], sface_anon: np.ndarray | None) -> dict:
        g = self.gallery
        n = len(results)
        out: dict = {"dataset": self.dataset.name, "pairs": n, "far": FAR,
                     "thresholds": {k: round(v, 4) for k, v in g.thresholds.items()},
                     "search_thresholds": {k: round(v, 4) for k, v in g.search_thresholds.items()},
                     "impostor_pairs": g.impostors, "gallery_images": len(g.rels)}
        for rec in RECOGNIZERS:
            thr = g.thresholds[rec]
            out[f"tpr_{rec}"] = metrics.accept_rate([r.sim_anon[rec] for r in results], thr)
            out[f"tpr_{rec}_original"] = metrics.accept_rate([r.sim_orig[rec] for r in results], thr)
            out[f"self_similarity_{rec}"] = float(np.mean([r.self_sim[rec] for r in results])) if n else float("nan")
            ranks = np.array([r.rank[rec] for r in results])
            out[f"rank1_{rec}"] = float((ranks == 1).mean()) if n else float("nan")
            out[f"mean_rank_{rec}"] = float(ranks.mean()) if n else float("nan")
            others = np.array([r.best_other[rec] for r in results])
            out[f"best_other_similarity_{rec}"] = float(others.mean()) if n else float("nan")
            # Does the anonymized face become another real person? Scored as a 1:N search against
            # everyone else: the pairwise threshold would flag real faces too (0.95 of LFW
            # originals beat it against someone among 3,500 people).
            out[f"matches_someone_else_{rec}"] = metrics.accept_rate(others, g.search_thresholds[rec])
        for det in UTILITY_DETECTORS:
            out[f"detection_{det}"] = float(np.mean([r.detected[det] for r in results])) if n else float("nan")
        for key in ("ssim", "psnr", "face_ssim", "face_psnr", "landmark_shift", "sharpness_ratio", "age_change"):
            vals = np.array([getattr(r, key) for r in results], np.float64)
            vals = vals[np.isfinite(vals)]
            out[key] = float(vals.mean()) if len(vals) else float("nan")
        out["gender_kept"] = float(np.mean([r.gender_kept for r in results])) if n else float("nan")
        secs = sum(r.seconds for r in results)
        out["images_per_second"] = n / secs if secs else float("nan")
        out["faces_per_second"] = sum(r.faces for r in results) / secs if secs else float("nan")
        out.update(self.realism(sface_anon))
        return {k: _clean(v) for k, v in out.items()}

    def realism(self, sface_anon: np.ndarray | None) -> dict:
        """Fréchet distance of SFace features: anonymized vs real faces, beside real vs real
        (two disjoint real sets of the same size, none of them a probe image)."""
        if sface_anon is None or len(sface_anon) < 10:
            return {"frechet_sface": float("nan"), "frechet_sface_real_reference": float("nan"), "frechet_n": 0}
        probes = {r for _, r in self.dataset.same}
        pool = np.array([i for i, rel in enumerate(self.gallery.rels) if rel not in probes])
        rng = np.random.default_rng(0)
        pool = rng.permutation(pool)
        n = min(len(sface_anon), len(pool) // 2)
        if n < 10:
            return {"frechet_sface": float("nan"), "frechet_sface_real_reference": float("nan"), "frechet_n": n}
        e = self.gallery.emb["sface"]
        real_1, real_2 = e[pool[:n]], e[pool[n : 2 * n]]
        x = sface_anon[rng.permutation(len(sface_anon))[:n]]
        return {"frechet_sface": metrics.frechet_distance(x, real_1),
                "frechet_sface_real_reference": metrics.frechet_distance(real_2, real_1), "frechet_n": int(n)}

    def controllability(self, config: PipelineConfig, limit: int) -> dict | None:
        """Recognizer similarity to the original as the method's strength parameter grows: the
        method's own, without the recognizer gate (which would send the weak settings to the
        fallback blur and draw the blur's similarity there)."""
        cls = ANONYMIZERS.get(config.method)
        strength = getattr(cls, "strength", None)
        if strength is None:
            return None
        param, values = strength
        pairs = self.pairs(limit)
        curve = []
        for v in values:
            cfg = PipelineConfig(**{**config.__dict__, "params": {**config.params, param: v}, "recognizer_gate": False})
            point = {"value": v, **self.similarity_only(Pipeline(cfg), pairs)}
            curve.append({k: _clean(x) for k, x in point.items()})
        out = {"param": param, "pairs": len(pairs), "curve": curve}
        for rec in RECOGNIZERS:
            sims = [p[f"{rec}_self_similarity"] for p in curve]
            out[f"spearman_{rec}"] = _clean(metrics.spearman(range(len(values)), sims))
            out[f"monotone_{rec}"] = metrics.is_monotone_decreasing(sims)
        return out
