"""Feathered alpha blending.

The feather grows *outward* from the region: inside the region alpha is exactly 1, so no
original pixel of the face leaks through the blend; the transition happens in a band of
``feather`` pixels outside it.
"""
from __future__ import annotations

import cv2
import numpy as np


def feathered_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """A float alpha in [0, 1]: 1 on ``mask`` and fading to 0 outside it, smoothly (a smoothstep
    of the distance to the region: 0.5 at ``feather`` pixels, 0 at twice that). The distance
    transform costs the same for any feather; the dilate-and-blur it replaces grew with it and
    was a third of the time of a blurred video frame."""
    mask = mask.astype(np.float32)
    if feather < 1:
        return mask
    outside = (mask < 0.5).astype(np.uint8)
    if not outside.any() or outside.all():
        return mask
    # The ramp is smooth over 2 x feather px, so it is computed on a grid of about feather / 4 px
    # and enlarged: the same alpha to within a few hundredths at any face size.
    h, w = mask.shape
    step = max(1.0, feather / 4)
    small = outside if step == 1.0 else cv2.resize(outside, (max(1, round(w / step)), max(1, round(h / step))),
                                                   interpolation=cv2.INTER_NEAREST)
    t = cv2.distanceTransform(small, cv2.DIST_L2, cv2.DIST_MASK_5)
    t *= step / (2 * feather)
    np.minimum(t, 1, out=t)
    soft = t * t
    soft *= 2 * t - 3
    soft += 1  # 1 - smoothstep(t)
    if step != 1.0:
        soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(mask, soft, out=soft)


def blend(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * foreground + (1 - alpha) * background`` in uint8 (computed only where alpha > 0:
    most of a face's crop is context the blend leaves as it was)."""
    a = alpha if alpha.ndim == 2 else alpha[..., 0]
    out = background.copy()
    x, y, w, h = cv2.boundingRect((a > 0).astype(np.uint8))
    if w == 0 or h == 0:
        return out
    rows, cols = slice(y, y + h), slice(x, x + w)
    w = np.ascontiguousarray(a[rows, cols], np.float32)
    out[rows, cols] = cv2.blendLinear(np.ascontiguousarray(foreground[rows, cols]), np.ascontiguousarray(background[rows, cols]),
                                      w, 1 - w)
    return out
