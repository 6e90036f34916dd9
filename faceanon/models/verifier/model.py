"""The verifier: a logistic regression on what the ensemble already knows about a detection.

Its inputs are each member detector's score for the box (0 where that member did not see it),
which members saw it, and the box's size, shape and height in the photo. Crop classifiers were
tried as well (a gradient-orientation histogram, a small CNN trained here, MTCNN's R-Net and
O-Net as a second family of face models); on WIDER none added precision at the same coverage
over these inputs (docs/detectors.md), so the verifier costs no extra pixels work.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...types import Face

WEIGHTS = Path(__file__).with_name("weights.json")


def features(faces: list[Face], members: list[str], image_height: int) -> np.ndarray:
    """(N, 2 * len(members) + 3): member scores, member present, log height, log aspect, centre height."""
    rows = []
    for f in faces:
        scores = f.extra.get("member_scores", {})
        s = [float(scores.get(m, 0.0)) for m in members]
        x1, y1, x2, y2 = (float(v) for v in f.box)
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        rows.append(s + [float(v > 0) for v in s] + [np.log(h), np.log(w / h), (y1 + y2) / 2 / max(image_height, 1)])
    return np.array(rows, np.float64).reshape(len(faces), 2 * len(members) + 3)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> dict:
    """Standardized, L2-regularized logistic regression by Newton steps -> {"mean", "std", "weights"}."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        g = z.T @ (p - y) + l2 * len(y) * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * len(y) * np.eye(len(w))
        step = np.linalg.solve(hess, g)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return {"mean": mu.tolist(), "std": sd.tolist(), "weights": w.tolist()}


def predict_logistic(model: dict, x: np.ndarray) -> np.ndarray:
    z = np.hstack([(x - np.array(model["mean"])) / np.array(model["std"]), np.ones((len(x), 1))])
    return 1 / (1 + np.exp(-z @ np.array(model["weights"])))


class FaceVerifier:
    """P(face) for detections of an ensemble with the members it was trained for."""

    def __init__(self, model: dict) -> None:
        self.members: list[str] = model["members"]
        self.model = model

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> "FaceVerifier | None":
        """The shipped verifier; None before train.py has written its weights (a packaging test
        checks that they ship)."""
        return cls(json.loads(Path(path).read_text())) if Path(path).exists() else None

    def __call__(self, faces: list[Face], image_height: int) -> np.ndarray:
        if not faces:
            return np.zeros(0)
        return predict_logistic(self.model, features(faces, self.members, image_height))
