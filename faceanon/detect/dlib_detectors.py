"""dlib's HOG + linear SVM detector and its MMOD CNN detector (weights from
`face_recognition_models`)."""
from __future__ import annotations

import numpy as np

from ..models.weights import model_path
from ..registry import Param
from ..types import Face
from .base import DETECTORS, Detector


@DETECTORS.register("dlib-hog")
class DlibHOGDetector(Detector):
    params = {
        "threshold": Param(float, -0.2, "minimum SVM score (dlib's own default is 0)", low=-5, high=5),
        "upsample": Param(int, 1, "times the image is doubled before scanning (finds faces down to ~80/2^n px)", low=0, high=4),
    }

    def __init__(self, threshold: float = -0.2, upsample: int = 1) -> None:
        super().__init__(threshold, upscale=1.0)
        import dlib

        self.upsample = upsample
        self._det = dlib.get_frontal_face_detector()

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        rects, scores, _ = self._det.run(np.ascontiguousarray(image), self.upsample, min(self.threshold, 0.0))
        return [Face(box=[r.left(), r.top(), r.right() + 1, r.bottom() + 1], score=s) for r, s in zip(rects, scores)]


@DETECTORS.register("dlib-mmod")
class DlibMMODDetector(Detector):
    params = {
        "threshold": Param(float, 0.0, "minimum CNN confidence", low=-5, high=5),
        "upsample": Param(int, 1, "times the image is doubled before scanning (slow on CPU)", low=0, high=4),
    }

    def __init__(self, threshold: float = 0.0, upsample: int = 1) -> None:
        super().__init__(threshold, upscale=1.0, max_side=1600)
        import dlib

        self.upsample = upsample
        self._det = dlib.cnn_face_detection_model_v1(str(model_path("dlib_mmod")))

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        found = self._det(np.ascontiguousarray(image), self.upsample)
        return [
            Face(box=[d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1], score=d.confidence)
            for d in found
        ]
