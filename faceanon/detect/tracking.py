"""Faces of a video linked into tracks, offline: the detections of every frame are known before
anything is drawn (two passes over the video, frames are not kept), so a track can be linked
across frames where the detector missed the face, smoothed without lag, and covered a little
before its first and after its last detection.

* :func:`link_tracks` links detections frame by frame: box overlap with the track's predicted
  box (constant velocity across a gap) plus a colour-appearance check, so two people who cross
  are not swapped;
* :func:`cover_tracks` turns tracks into what each frame must anonymize: detected faces,
  faces interpolated through gaps (``extra["interpolated"]``), boxes and landmarks smoothed
  over time by a centred Gaussian (no lag, unlike a causal filter), and a grown box held for a
  few frames at both ends (``extra["padding"]``: covered, never drawn on).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..types import Face
from .base import box_iou

# Linking. A detection joins a track whose predicted box it overlaps by MIN_IOU, unless their
# colours clearly differ (MIN_APPEARANCE, Bhattacharyya coefficient of hue-saturation histograms).
MIN_IOU = 0.25
MIN_APPEARANCE = 0.4
# Smoothing of boxes and landmarks over time (frames, Gaussian sigma).
SMOOTH_SIGMA = 1.0
# At each end of a track, this many frames keep a grown box (the face may be entering, leaving or
# missed by the detector there); PADDING_GROWTH makes up for the motion the box does not follow.
PADDING_GROWTH = 1.25


# A shot cut: the frame's 32x18 grey thumbnail differs from the previous one by over CUT_LEVEL
# (mean absolute difference, 0-255) and by over CUT_RATIO times the recent typical difference
# (fast camera moves reach ~12 on the dev clip, its cuts 26-30).
CUT_LEVEL = 20.0
CUT_RATIO = 4.0


class ShotCuts:
    """Finds shot cuts frame by frame (feed every frame to :meth:`see`); ``cuts`` holds the
    first frame of every new shot."""

    def __init__(self) -> None:
        self.cuts: set[int] = set()
        self._last: np.ndarray | None = None
        self._recent: list[float] = []
        self._index = 0

    def see(self, image: np.ndarray) -> None:
        thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._last is not None:
            d = float(np.abs(thumb - self._last).mean())
            typical = float(np.median(self._recent)) if self._recent else 0.0
            if d > CUT_LEVEL and d > CUT_RATIO * typical:
                self.cuts.add(self._index)
            self._recent = (self._recent + [d])[-10:]
        self._last = thumb
        self._index += 1


def appearance(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A face's colour signature: a normalised hue-saturation histogram of the box's middle."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.6, (y2 - y1) * 0.6
    a, b = int(np.clip(cx - bw / 2, 0, w - 1)), int(np.clip(cy - bh / 2, 0, h - 1))
    c, d = int(np.clip(np.ceil(cx + bw / 2), a + 1, w)), int(np.clip(np.ceil(cy + bh / 2), b + 1, h))
    hsv = cv2.cvtColor(np.ascontiguousarray(image[b:d, a:c]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def appearance_similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 1.0
    return float(np.sqrt(a * b).sum())


@dataclass
class Track:
    """One face through the video: its detections by frame."""

    track_id: int
    faces: dict[int, Face] = field(default_factory=dict)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))

    @property
    def first(self) -> int:
        return min(self.faces)

    @property
    def last(self) -> int:
        return max(self.faces)

    def predicted_box(self, frame: int) -> np.ndarray:
        return self.faces[self.last].box + self.velocity * (frame - self.last)

    def add(self, frame: int, face: Face) -> None:
        if self.faces:
            step = (face.box - self.faces[self.last].box) / max(frame - self.last, 1)
            self.velocity = 0.5 * self.velocity + 0.5 * step
        face.track_id = self.track_id
        self.faces[frame] = face


def link_tracks(frames: list[list[Face]], max_gap: int, cuts: set[int] = frozenset()) -> list[Track]:
    """Detections of each frame (in order) linked into tracks. A track that has not been seen for
    more than ``max_gap`` frames ends, and every track ends at a shot cut (``cuts``: the first
    frames of new shots). Faces may carry ``extra["appearance"]`` (:func:`appearance`) for the
    colour check."""
    tracks: list[Track] = []
    active: list[Track] = []
    for t, faces in enumerate(frames):
        active = [] if t in cuts else [tr for tr in active if t - tr.last <= max_gap + 1]
        unmatched = list(range(len(faces)))
        if active and faces:
            iou = box_iou(np.stack([f.box for f in faces]), np.stack([tr.predicted_box(t) for tr in active]))
            look = np.array([[appearance_similarity(f.extra.get("appearance"), tr.faces[tr.last].extra.get("appearance"))
                              for tr in active] for f in faces])
            score = np.where((iou >= MIN_IOU) & (look >= MIN_APPEARANCE), iou + 0.5 * look, -1.0)
            while score.size and score.max() > 0:
                fi, ti = np.unravel_index(np.argmax(score), score.shape)
                active[ti].add(t, faces[fi])
                unmatched.remove(fi)
                score[fi, :] = -1
                score[:, ti] = -1
        for fi in unmatched:
            track = Track(len(tracks))
            track.add(t, faces[fi])
            tracks.append(track)
            active.append(track)
    return tracks


def _interpolate(a: np.ndarray | None, b: np.ndarray | None, w: float) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return (1 - w) * a + w * b


def _smooth(series: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian smoothing along axis 0, weights renormalised at the ends."""
    if sigma <= 0 or len(series) < 2:
        return series
    r = int(np.ceil(3 * sigma))
    n = len(series)
    flat = series.reshape(n, -1).astype(np.float64)
    out = np.empty_like(flat)
    for t in range(n):
        lo, hi = max(0, t - r), min(n, t + r + 1)
        k = np.exp(-0.5 * ((np.arange(lo, hi) - t) / sigma) ** 2)
        out[t] = k @ flat[lo:hi] / k.sum()
    return out.reshape(series.shape).astype(np.float32)


def fill_track(track: Track, sigma: float = SMOOTH_SIGMA) -> dict[int, Face]:
    """A face for every frame from the track's first to its last detection: gaps interpolated,
    boxes and landmarks smoothed. Each face is a copy (detections are not changed)."""
    seen = sorted(track.faces)
    filled: dict[int, Face] = {}
    for a, b in zip(seen, seen[1:] + [None]):
        fa = track.faces[a]
        filled[a] = replace(fa, extra=dict(fa.extra))
        if b is None:
            continue
        fb = track.faces[b]
        for t in range(a + 1, b):
            w = (t - a) / (b - a)
            filled[t] = Face(_interpolate(fa.box, fb.box, w), 0.0, _interpolate(fa.landmarks5, fb.landmarks5, w),
                             _interpolate(fa.landmarks68, fb.landmarks68, w), track.track_id, "interpolated",
                             {"interpolated": True, "between": (a, b)})
    order = sorted(filled)
    for attr in ("box", "landmarks5", "landmarks68"):
        values = [getattr(filled[t], attr) for t in order]
        if any(v is None for v in values):
            continue
        for t, v in zip(order, _smooth(np.stack(values), sigma)):
            setattr(filled[t], attr, v)
    return filled


def cover_tracks(tracks: list[Track], n_frames: int, padding: int, cuts: set[int] = frozenset(),
                 sigma: float = SMOOTH_SIGMA) -> list[list[Face]]:
    """What each of ``n_frames`` frames must anonymize: every track filled and smoothed
    (:func:`fill_track`), plus ``padding`` frames before and after it, within its shot, with its
    first/last box grown by ``PADDING_GROWTH`` and no landmarks (``extra["padding"]``)."""
    out: list[list[Face]] = [[] for _ in range(n_frames)]
    bounds = sorted({0, n_frames, *cuts})
    for track in tracks:
        filled = fill_track(track, sigma)
        first, last = min(filled), max(filled)
        shot_start = max(b for b in bounds if b <= first)
        shot_end = min(b for b in bounds if b > last)
        for t, face in filled.items():
            out[t].append(face)
        for t, end in [(t, first) for t in range(max(shot_start, first - padding), first)] + \
                      [(t, last) for t in range(last + 1, min(shot_end, last + 1 + padding))]:
            edge = filled[end]
            out[t].append(Face(edge.scaled_box(PADDING_GROWTH), 0.0, track_id=track.track_id, detector="padding",
                               extra={"padding": True}))
    return out
