"""dlib's 68-point and 5-point shape predictors run on detector boxes."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..models.weights import model_path
from ..types import Face

# dlib's predictors were trained on dlib HOG boxes (square, brows to chin). Other detectors'
# boxes differ, so where 5 landmarks exist we rebuild a HOG-like box from them: its centre is
# the midpoint between eye centre and mouth centre (raised by 0.07 of their distance) and its
# side is 2.28 times that distance (fitted on 85 LFW faces found by both YuNet and dlib HOG).
_HOG_BOX_SIDE = 2.28
_HOG_BOX_RAISE = 0.07


def landmarks5_from_68(pts68: np.ndarray) -> np.ndarray:
    """The 5-point convention of :class:`Face` from 68 iBUG points."""
    p = np.asarray(pts68, np.float32)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def hog_like_box(face: Face) -> np.ndarray:
    if face.landmarks5 is None:
        # Detector boxes (YuNet, CenterFace) run from forehead to chin; HOG boxes are square
        # and start at the brows.
        c = face.center
        side = 0.9 * max(face.width, face.height)
        c = c + np.array([0, 0.08 * face.height], np.float32)
        return np.concatenate([c - side / 2, c + side / 2])
    lm = face.landmarks5
    eye, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    d = float(np.linalg.norm(mouth - eye))
    c = (eye + mouth) / 2 - np.array([0, _HOG_BOX_RAISE * d], np.float32)
    half = _HOG_BOX_SIDE * d / 2
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half], np.float32)


@lru_cache(maxsize=None)
def _predictor(points: int):
    import dlib

    return dlib.shape_predictor(str(model_path("dlib_68" if points == 68 else "dlib_5")))


class Landmarker:
    """Adds dlib landmarks to faces in place (``landmarks68``; ``landmarks5`` if missing)."""

    def __init__(self, points: int = 68) -> None:
        if points not in (5, 68):
            raise ValueError("points must be 5 or 68")
        self.points = points

    def __call__(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        import dlib

        predictor = _predictor(self.points)
        img = np.ascontiguousarray(image)
        for face in faces:
            x1, y1, x2, y2 = (int(round(v)) for v in hog_like_box(face))
            shape = predictor(img, dlib.rectangle(x1, y1, x2, y2))
            pts = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
            if self.points == 68:
                face.landmarks68 = pts
                if face.landmarks5 is None:
                    face.landmarks5 = landmarks5_from_68(pts)
            elif face.landmarks5 is None:
                # dlib's 5-point model: two corners per eye and the nose base; eyes become
                # centres, the mouth is extrapolated below the nose.
                left_eye = pts[2:4].mean(0)
                right_eye = pts[0:2].mean(0)
                eyes = sorted([left_eye, right_eye], key=lambda p: p[0])
                nose = pts[4]
                mid = (eyes[0] + eyes[1]) / 2
                down = nose - mid
                mouth_c = nose + 0.6 * down
                half = (eyes[1] - eyes[0]) * 0.4
                face.landmarks5 = np.stack([eyes[0], eyes[1], nose, mouth_c - half, mouth_c + half])
        return faces
