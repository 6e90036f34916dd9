"""Face/not-face verifier of the ensemble's detections: a calibrated probability that a detected
box lies on a real face (model.py; trained by train.py on the WIDER dev photos)."""
from .model import FaceVerifier, fit_logistic

__all__ = ["FaceVerifier", "fit_logistic"]
