"""The classical baselines every de-identification paper compares against."""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import UsageError
from ..registry import Param
from ..types import Face
from .base import ANONYMIZERS, Anonymizer


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


def _face_side(face: Face) -> float:
    return max(face.width, face.height, 1.0)


# Kernels wider than this are applied to a shrunk copy: a wide Gaussian keeps no detail finer
# than its shrunk grid, and the cost no longer grows with the face.
_DIRECT_KERNEL = 31


def separable_gaussian(image: np.ndarray, sigma: float, ksize: int = 0) -> np.ndarray:
    """cv2.GaussianBlur (replicated border; ``ksize`` 0 = as OpenCV sizes it from sigma for 8-bit
    images, ``sigma`` 0 = as OpenCV derives it from ksize) run as two 1-D float passes. On 8-bit
    images OpenCV's GaussianBlur takes a bit-exact fixed-point path that costs four times as much
    for these kernels (160 against 40 us on a 60x50 face), which was most of the video blur's time
    in frames with dozens of faces; the result differs by rounding only."""
    if ksize <= 0:
        ksize = int(round(sigma * 6 + 1)) | 1
    g = cv2.getGaussianKernel(ksize, sigma)
    return cv2.sepFilter2D(image, -1, g, g, borderType=cv2.BORDER_REPLICATE)


def gaussian_blur(image: np.ndarray, k: int) -> np.ndarray:
    """Gaussian blur with an odd kernel of ``k`` px (sigma as OpenCV derives it from k)."""
    if k <= _DIRECT_KERNEL:
        return separable_gaussian(image, 0, k)
    h, w = image.shape[:2]
    s = k / _DIRECT_KERNEL
    small = cv2.resize(image, (max(1, round(w / s)), max(1, round(h / s))), interpolation=cv2.INTER_AREA)
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for kernel k, then in shrunk pixels
    small = separable_gaussian(small, sigma / s)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


SMALL_FACE, LARGE_FACE = 48, 96  # px: the blur's small-face ratio below, its ratio above


@ANONYMIZERS.register("blur")
class GaussianBlur(Anonymizer):
    summary = "Gaussian blur of the face region"
    strength = ("k", [5, 11, 21, 31, 51, 71])
    params = {
        "k": Param(int, 0, "fixed kernel size in pixels (odd); 0 = set by face size", low=0, high=1001),
        "ratio": Param(float, 0.5, "kernel size as a fraction of the face's larger side, when k = 0", low=0.05, high=4),
        "small_ratio": Param(float, 1.0, f"the ratio for faces of {SMALL_FACE} px or less (blended into `ratio` "
                             f"up to {LARGE_FACE} px)", low=0.05, high=4),
    }

    def __init__(self, k: int = 0, ratio: float = 0.5, small_ratio: float = 1.0) -> None:
        self.k, self.ratio, self.small_ratio = k, ratio, small_ratio

    def kernel(self, face: Face) -> int:
        if self.k > 0:
            return _odd(self.k)
        side = _face_side(face)
        # Small faces get a relatively wider blur: at the same ratio, a blurred 30-60 px face in a
        # crowd still matched its original for SFace (hair, outline and glasses survive), while
        # the 100 px faces of LFW and CelebA did not (bench/video_eval.py, docs/video.md).
        t = float(np.clip((LARGE_FACE - side) / (LARGE_FACE - SMALL_FACE), 0, 1))
        return _odd(side * (self.ratio + t * max(0.0, self.small_ratio - self.ratio)))

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        return gaussian_blur(crop, self.kernel(face))


@ANONYMIZERS.register("pixelate")
class Pixelate(Anonymizer):
    summary = "mosaic of square blocks over the face"
    strength = ("block", [2, 4, 6, 8, 12, 16])
    params = {
        "block": Param(int, 0, "block size in pixels; 0 = face size / blocks (1 would change nothing)", low=0, high=1000),
        "blocks": Param(int, 10, "blocks across the face's larger side, when block = 0", low=1, high=256),
    }

    def __init__(self, block: int = 0, blocks: int = 10) -> None:
        if block == 1:
            raise UsageError("parameter block: must be 0 (set by face size) or 2..1000 (got 1)")
        self.block, self.blocks = block, blocks

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        block = self.block if self.block > 0 else max(2, int(round(_face_side(face) / max(1, self.blocks))))
        h, w = crop.shape[:2]
        # Anchor the grid at the face's top-left corner so blocks do not depend on the crop.
        ox, oy = int(face.box[0]) % block, int(face.box[1]) % block
        out = crop.copy()
        for y in range(oy - block if oy else 0, h, block):
            for x in range(ox - block if ox else 0, w, block):
                ys, xs = slice(max(y, 0), min(y + block, h)), slice(max(x, 0), min(x + block, w))
                cell = crop[ys, xs]
                if cell.size:
                    out[ys, xs] = cell.reshape(-1, cell.shape[-1]).mean(0).round()
        return out


@ANONYMIZERS.register("mask")
class SolidMask(Anonymizer):
    summary = "face covered by a solid colour"
    params = {"color": Param(tuple, (0, 0, 0), "R,G,B colour of the mask", low=0, high=255, min_length=3)}

    def __init__(self, color: tuple = (0, 0, 0)) -> None:
        self.color = tuple(color)

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        return np.broadcast_to(np.array(self.color, np.uint8), crop.shape).copy()


@ANONYMIZERS.register("noise")
class GaussianNoise(Anonymizer):
    summary = "additive Gaussian noise on the face"
    strength = ("sigma", [10, 30, 60, 90, 120])
    params = {"sigma": Param(float, 60.0, "noise standard deviation, in 0-255 intensity units", low=1, high=255)}

    def __init__(self, sigma: float = 60.0) -> None:
        self.sigma = sigma

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, self.sigma, crop.shape[:2] + (1,))
        # One noise value per pixel for all channels keeps the hue; it is the luminance that
        # carries identity.
        return np.clip(crop.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@ANONYMIZERS.register("edge")
class EdgeMap(Anonymizer):
    summary = "face replaced by its Canny edge map (white lines on black)"
    params = {
        "low": Param(float, 50.0, "Canny lower hysteresis threshold", low=0, high=1000),
        "high": Param(float, 150.0, "Canny upper hysteresis threshold", low=0, high=1000),
    }

    def __init__(self, low: float = 50.0, high: float = 150.0) -> None:
        self.low, self.high = low, high

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        grey = cv2.GaussianBlur(grey, (3, 3), 0)
        edges = cv2.Canny(grey, self.low, self.high)
        return np.repeat(edges[:, :, None], 3, axis=2)


@ANONYMIZERS.register("superpixel")
class SuperPixel(Anonymizer):
    summary = "SLIC super-pixels filled with their mean colour"
    strength = ("segments", [200, 100, 50, 25, 12, 6])  # fewer segments = stronger
    params = {
        "segments": Param(int, 16, "approximate number of SLIC segments over the face box", low=1, high=10000),
        "compactness": Param(float, 20.0, "SLIC compactness (higher = squarer segments)", low=0.01, high=1000),
    }

    def __init__(self, segments: int = 16, compactness: float = 20.0) -> None:
        self.segments, self.compactness = segments, compactness

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray:
        from skimage.segmentation import slic

        # Segment count is set for the face box; the crop around it is larger.
        area_ratio = crop.shape[0] * crop.shape[1] / max(face.width * face.height, 1.0)
        labels = slic(crop, n_segments=max(2, int(self.segments * area_ratio)), compactness=self.compactness,
                      start_label=0, channel_axis=-1)
        flat = labels.ravel()
        n = flat.max() + 1
        counts = np.bincount(flat, minlength=n).astype(np.float64)
        means = np.stack([np.bincount(flat, crop[..., c].ravel(), minlength=n) / np.maximum(counts, 1) for c in range(3)], 1)
        return means[labels].round().astype(np.uint8)
