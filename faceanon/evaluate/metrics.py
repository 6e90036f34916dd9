"""The numbers of the evaluation, each a small function tested on known cases."""
from __future__ import annotations

import cv2
import numpy as np


def far_threshold(impostor_scores: np.ndarray, far: float = 1e-3) -> float:
    """The smallest similarity threshold t with P(impostor score > t) <= far."""
    s = np.sort(np.asarray(impostor_scores, np.float64))
    if len(s) == 0:
        raise ValueError("no impostor scores")
    k = int(np.ceil(len(s) * (1 - far))) - 1  # at most floor(n*far) scores lie above s[k]
    return float(s[min(max(k, 0), len(s) - 1)])


def accept_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of scores above the threshold (TPR on genuine pairs, FAR on impostors)."""
    scores = np.asarray(scores, np.float64)
    return float((scores > threshold).mean()) if len(scores) else float("nan")


def impostor_scores(embeddings: np.ndarray, identities: list[str], max_images: int = 4000,
                    seed: int = 0) -> np.ndarray:
    """Similarities of all pairs of different people among (up to) ``max_images`` images."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(identities))
    if len(idx) > max_images:
        idx = np.sort(rng.choice(idx, max_images, replace=False))
    e = embeddings[idx]
    ids = np.array([identities[i] for i in idx])
    sims = e @ e.T
    upper = np.triu(np.ones_like(sims, bool), 1)
    return sims[upper & (ids[:, None] != ids[None, :])]


def best_other_scores(embeddings: np.ndarray, identities: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each image, its best similarity to any image of another person: the score an
    identification search (1:N) with a real face returns when that person is not enrolled."""
    ids = np.asarray(identities)
    out = np.empty(len(ids), np.float32)
    for i in range(0, len(ids), chunk):
        sims = embeddings[i : i + chunk] @ embeddings.T
        sims[ids[i : i + chunk, None] == ids[None, :]] = -np.inf
        out[i : i + chunk] = sims.max(1)
    return out


def identity_ranks(probe: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray, true_id: str,
                   _index: tuple | None = None) -> tuple[int, float]:
    """Rank (1 = best) of the true identity when gallery identities are ordered by their best
    similarity to the probe, and the best similarity to anyone else. ``_index`` is
    ``np.unique(gallery_ids, return_inverse=True)``, precomputed by callers that rank many probes."""
    sims = gallery @ probe
    uniq, inverse = _index if _index is not None else np.unique(gallery_ids, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inverse, sims)
    true_index = int(np.searchsorted(uniq, true_id))
    if true_index >= len(uniq) or uniq[true_index] != true_id:
        raise ValueError(f"identity {true_id!r} is not in the gallery")
    true_best = best[true_index]
    others = np.delete(best, true_index)
    return int(1 + (others > true_best).sum()), float(others.max() if len(others) else -1.0)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """FID's formula on two feature sets: |mu_x - mu_y|^2 + Tr(Sx + Sy - 2 (Sx Sy)^1/2)."""
    from scipy import linalg

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu_x, mu_y = x.mean(0), y.mean(0)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(sx @ sy)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(sx)) * 1e-6
        covmean = linalg.sqrtm((sx + eps) @ (sy + eps))
    covmean = covmean.real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(sx + sy - 2 * covmean))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    if min(a.shape[:2]) < 7:
        return float("nan")
    return float(structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, data_range=255))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def sharpness(region: np.ndarray) -> float:
    """Variance of the Laplacian of the grey region."""
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(x, y).statistic
    return float(r) if np.isfinite(r) else float("nan")


def is_monotone_decreasing(values, tolerance: float = 0.01) -> bool:
    v = np.asarray(values, np.float64)
    return bool(np.all(np.diff(v) <= tolerance))


def detected_at(faces, box: np.ndarray) -> bool:
    """Does any detection sit on the face ``box``? Its centre inside the box and its width
    within 0.4-2.5x, so square (dlib) and tall (YuNet) boxes count alike."""
    w = box[2] - box[0]
    for f in faces:
        cx, cy = f.center
        if box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and 0.4 * w <= f.width <= 2.5 * w:
            return True
    return False
