"""The detector interface and the shared machinery: score threshold, NMS, image pyramid."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ..registry import Param, Registry
from ..types import Face
from ..workers import ordered_map

DETECTORS: Registry["Detector"] = Registry("detector")


class Detector:
    """Finds faces in an RGB uint8 image and returns them as :class:`Face` objects.

    Subclasses implement :meth:`_detect_once` for one image at its given size; this class adds
    a two-level pyramid for small faces: an image larger than ``max_side`` is searched whole
    at reduced size (large faces) *and* in overlapping tiles at full resolution (small faces);
    ``upscale`` > 1 adds a pass on tiles enlarged by that factor. Results are merged by NMS.
    """

    name = "base"
    params: dict[str, Param] = {}
    tile = 1024

    def __init__(self, threshold: float, upscale: float = 1.0, max_side: int = 2048) -> None:
        self.threshold = threshold
        self.upscale = upscale
        self.max_side = max_side

    def __call__(self, image: np.ndarray) -> list[Face]:
        return self.detect(image)

    def detect_frames(self, frames: Iterable[np.ndarray],
                      then: Callable[[np.ndarray, list[Face]], list[Face]] | None = None,
                      every_frame: bool = False) -> Iterator[tuple[np.ndarray, list[Face] | None]]:
        """A video's frames, in order, each with its faces passed through ``then(frame, faces)``,
        or None where detection failed (the caller blacks that frame out). Detection runs on a
        worker thread ahead of the caller, so that it overlaps the caller's work on earlier frames.
        ``every_frame``: a detector that may skip work on some frames (an ensemble's members
        with ``every``) does not."""

        return ordered_map(lambda frame: frame_faces(frame, self.detect, then), frames, workers=1, waiting=1,
                           name="detect")

    def share_cores(self) -> None:
        """Called by an ensemble that runs its members at once: a member that sets its own thread
        count uses one thread, leaving the other cores to the other members."""

    def detect(self, image: np.ndarray) -> list[Face]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("detectors take an RGB uint8 image of shape (H, W, 3)")
        h, w = image.shape[:2]
        faces: list[Face] = []
        # Pass 1: the whole image, shrunk only if it is huge.
        s = min(1.0, self.max_side / max(h, w))
        small = image if s == 1.0 else cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        faces += [f.transformed(1 / s) for f in self._detect_once(small)]
        # Pass 2: full-resolution tiles of a shrunk image; up-scaled tiles on request.
        if s < 1.0:
            faces += self._detect_tiled(image, 1.0)
        if self.upscale > 1.0:
            faces += self._detect_tiled(image, self.upscale)
        faces = [f for f in faces if f.score >= self.threshold]
        for f in faces:
            f.detector = self.name
        return nms(faces, 0.4)

    def _detect_tiled(self, image: np.ndarray, scale: float) -> list[Face]:
        h, w = image.shape[:2]
        src_tile = int(self.tile / scale)
        overlap = src_tile // 4
        step = max(1, src_tile - overlap)
        out: list[Face] = []
        for y0 in range(0, max(1, h - overlap), step):
            for x0 in range(0, max(1, w - overlap), step):
                crop = image[y0 : y0 + src_tile, x0 : x0 + src_tile]
                ch, cw = crop.shape[:2]
                if ch < 8 or cw < 8:
                    continue
                big = cv2.resize(crop, (round(cw * scale), round(ch * scale)), interpolation=cv2.INTER_LINEAR)
                for f in self._detect_once(big):
                    f = f.transformed(1 / scale).shifted(-x0, -y0)
                    # Faces cut by a tile edge are found whole by the neighbouring tile or pass 1.
                    out.append(f)
        return out

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        raise NotImplementedError


def frame_faces(frame: np.ndarray, detect: Callable[[np.ndarray], list[Face]],
                then: Callable[[np.ndarray, list[Face]], list[Face]] | None) -> list[Face] | None:
    """A video frame's faces, ``detect(frame)`` passed through ``then(frame, faces)``, or None when
    either fails: the caller blacks that frame out (fail closed)."""
    try:
        faces = detect(frame)
        return then(frame, faces) if then is not None else faces
    except Exception:  # noqa: BLE001 - see the docstring
        return None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes ``a`` (N,4) and ``b`` (M,4)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def inside_fraction(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(N, M): the share of each box of ``a`` (N, 4) that lies inside each box of ``b`` (M, 4)
    grown by ``scale`` about its centre (the region an anonymizer replaces, for the mask scale)."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) * scale / 2
    lo = np.maximum(a[:, None, :2], (centre - half)[None])
    hi = np.minimum(a[:, None, 2:], (centre + half)[None])
    area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6)
    return np.clip(hi - lo, 0, None).prod(2) / area[:, None]


def look_again(detect, image: np.ndarray, box: np.ndarray, face_side: float, context: float = 3.0,
               max_zoom: float = float("inf")) -> list[tuple[float, float]]:
    """A second opinion on ``box``: ``detect`` (image -> faces) runs on a square crop around it,
    zoomed so the box's longer side is ``face_side`` px (a size detectors see well; at most
    ``max_zoom`` times), with ``context`` times that side in view. Returns (score, IoU with
    ``box``) of every face seen there: the face seen must be this one, not a larger face around
    it (a box on a mouth is no face), which the IoU tells."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1, 1.0)
    zoom = min(max_zoom, face_side / side)
    crop_side = max(16, round(context * side * zoom))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    to_crop = np.array([[zoom, 0, crop_side / 2 - cx * zoom], [0, zoom, crop_side / 2 - cy * zoom]], np.float32)
    crop = cv2.warpAffine(image, to_crop, (crop_side, crop_side), flags=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    target = (np.array([x1 - cx, y1 - cy, x2 - cx, y2 - cy], np.float32) * zoom + crop_side / 2)
    seen = detect(crop)
    if not seen:
        return []
    ious = box_iou(target, np.stack([f.box for f in seen]))[0]
    return [(float(f.score), float(iou)) for f, iou in zip(seen, ious)]


def nms_indices(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-np.asarray(scores)))
    keep: list[int] = []
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            ious = box_iou(boxes[i], boxes[order])[0]
            order = [j for j, o in zip(order, ious) if o < iou]
    return keep


def nms(faces: Iterable[Face], iou: float) -> list[Face]:
    faces = list(faces)
    if not faces:
        return []
    keep = nms_indices(np.stack([f.box for f in faces]), np.array([f.score for f in faces]), iou)
    return [faces[i] for i in keep]


def main_face(faces: list[Face], shape: tuple[int, int]) -> Face | None:
    """The main face of a photo: large, confident and near the centre (dataset crops and swap
    sources are centred on their person)."""
    if not faces:
        return None
    h, w = shape[:2]
    centre = np.array([w / 2, h / 2])

    def merit(f: Face) -> float:
        off = np.linalg.norm(f.center - centre) / max(h, w)
        return f.score * min(f.width, f.height) / max(h, w) - off

    return max(faces, key=merit)
