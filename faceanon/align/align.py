"""Similarity alignment of a face to a canonical crop, and its inverse."""
from __future__ import annotations

import cv2
import numpy as np

from ..types import Face

# The 5-point template of the 112x112 crops used by ArcFace-family recognizers (SFace too).
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst
    (Umeyama 1991), as a 2x3 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var_s = (s_c**2).sum() / len(src)
    scale = (sig * sign).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m.astype(np.float32)


def align_face(image: np.ndarray, face: Face, size: int = 112, template: np.ndarray = ARCFACE_TEMPLATE_112,
               template_size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """The face warped to a ``size`` x ``size`` canonical crop, and the 2x3 matrix used."""
    if face.landmarks5 is None:
        raise ValueError("alignment needs 5 landmarks")
    dst = np.asarray(template, np.float32) * (size / template_size)
    m = similarity_transform(face.landmarks5, dst)
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return crop, m


def warp_back(crop: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`align_face`: the crop placed back into an image of ``shape`` (h, w),
    with a float mask in [0, 1] of where it landed."""
    h, w = shape[:2]
    inv = cv2.invertAffineTransform(matrix)
    back = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ones = np.ones(crop.shape[:2], np.float32)
    mask = cv2.warpAffine(ones, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return back, mask
