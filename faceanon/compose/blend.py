"""Feathered alpha blending.

The feather grows *outward* from the region: inside the region alpha is exactly 1, so no
original pixel of the face leaks through the blend; the transition happens in a band of
``feather`` pixels outside it.
"""
from __future__ import annotations

import cv2
import numpy as np


def feathered_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """A float alpha in [0, 1]: 1 on ``mask`` and fading to 0 over ``feather`` pixels outside."""
    mask = mask.astype(np.float32)
    if feather < 1:
        return mask
    r = int(round(feather))
    grown = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    soft = cv2.GaussianBlur(grown, (0, 0), sigmaX=feather / 2, borderType=cv2.BORDER_REPLICATE)
    return np.maximum(mask, soft)


def blend(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background`` in uint8."""
    a = alpha[..., None] if alpha.ndim == 2 else alpha
    out = foreground.astype(np.float32) * a + background.astype(np.float32) * (1 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
