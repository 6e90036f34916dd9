"""Detect stage: every detector returns a list of :class:`~faceanon.types.Face`."""
from . import centerface, dlib_detectors, ensemble, mtcnn, yunet  # noqa: F401  (registration)
from .base import DETECTORS, Detector, box_iou, nms

DEFAULT_DETECTOR = "ensemble"


def create_detector(name: str = DEFAULT_DETECTOR, **params) -> Detector:
    return DETECTORS.create(name, **params)


__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "Detector", "create_detector", "box_iou", "nms"]
