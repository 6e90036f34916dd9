"""Render only where rendering is safe (issue 15, item 2): the check a face must pass before a
method that paints new faces (``Anonymizer.paints_new_faces``) is let onto it; the pipeline
asks. A face that fails gets the pipeline's fallback filter
(a strong blur), with the reason in its report: privacy is kept, and no synthesized face lands
on a hand, an ear or the back of a head.

The checks, cheapest first:

* size: a face box under ``MIN_HEIGHT`` px is too small for a new face to read as one;
* the detector's own doubt: an ensemble detection whose face/not-face verifier
  (models/verifier) gives it under ``MIN_VERIFIER`` (the cupcake and a dark blob that the
  other checks let through on the WIDER dev photos scored 0.03);
* both families: an ensemble detection (detect/ensemble.py) that only one of its detectors
  found (``extra["votes"]``) is drawn on by neither: the one new face on a non-face left on the
  WIDER dev photos straddled two heads, found by YuNet alone;
* turn, read twice: the nose tip's place between the jaw ends (dlib's 68 points), beyond
  ``MAX_TURN``, and the nose's place beside the eyes (the detector's 5 points), beyond
  ``MAX_NOSE_ASIDE``: the far side of the face is hidden and the render smears across the
  profile. The jaw reading alone missed profiles the 68-point fit squares up into a frontal face,
  its far jaw laid on the hair (a woman at 60 degrees in the dev clip got a face painted on her
  hair); the detector's own points keep the nose beside both eyes there;
* landmark fit: the 5 points the detector gave against those of the 68-point fit (in
  inter-ocular distances): on things that are not faces the two models disagree;
* another detector family: MTCNN's O-Net (a 2016 cascade, trained apart from YuNet) must give
  the face's square box a face probability >= ``MIN_ONET``; the hands, lamps and backs of heads
  that YuNet still confirmed scored under it;
* a second look: YuNet, run again on the face's own neighbourhood at a face size it sees well,
  must find a face over the box (IoU >= 0.5) with score >= ``MIN_CONFIRM``. It is the strongest
  of the four on the WIDER dev images (faces median 0.88, false alarms 0.42).

Thresholds were read off the first 120 WIDER dev images (bench/wider_render.py) and checked on
the rest; see docs/render_gate.md.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..align import landmarks5_from_68
from ..types import Face

MIN_HEIGHT = 24  # px
# Read off the first 120 WIDER dev photos (bench/wider_render.py, renders' verifier values):
# 2 of the 4 new faces drawn on non-faces scored 0.03, 1 of 348 drawn on faces scored under it.
MIN_VERIFIER = 0.1
MIN_VOTES = 2  # ensemble members that found the face
MAX_TURN = 0.35  # nose-tip offset from the jaw's middle, as a fraction of the jaw's width
# Nose offset from the eyes' midpoint along the eye line, in inter-ocular distances (about 0.6 at
# 45 degrees of turn). No LFW face of 300 reaches it, 2 % of CelebA's, 3 % of the WIDER dev
# faces the other checks let through: those were profiles or nearly (bench/wider_render.py sheet).
MAX_NOSE_ASIDE = 0.6
MAX_LANDMARK_DISAGREEMENT = 1.0  # mean distance of the 5 points, in inter-ocular distances
MIN_CONFIRM = 0.8  # YuNet score on the second look
_LOOK_SIDE = 160  # px: the face is shown to YuNet at about this height
# O-Net's own operating point (the cascade keeps boxes at >= 0.5 before its final threshold).
# On WIDER dev+held-out, 7 of the 13 new faces YuNet still let onto non-faces scored under it,
# and 12 % of the detections on annotated faces (24 px and up) too (those get the blur).
MIN_ONET = 0.5


@lru_cache(maxsize=1)
def _onet():
    from ..models.weights import onnx_session

    return onnx_session("mtcnn_onet")


def onet_score(crop: np.ndarray, face: Face) -> float:
    """MTCNN O-Net's face probability for the square around ``face.box``."""
    from ..detect.mtcnn import box_crops, square_boxes

    patch = box_crops(crop, square_boxes(np.asarray(face.box, np.float32)[None, :4]), 48).transpose(0, 2, 1, 3)
    _, _, prob = _onet().run(None, {"input_3": patch})
    return float(prob[0, 1])


@lru_cache(maxsize=1)
def _second_detector():
    from ..detect import create_detector

    return create_detector("yunet", threshold=0.05)


def second_look_score(crop: np.ndarray, face: Face) -> float:
    """YuNet's best score for a face over ``face.box`` (IoU >= 0.5) on a crop around it, the face
    shown about ``_LOOK_SIDE`` px high (0 when it sees none there)."""
    from ..detect.base import look_again

    seen = look_again(_second_detector(), crop, face.box, _LOOK_SIDE, max_zoom=4.0)
    return max((score for score, iou in seen if iou >= 0.5), default=0.0)


def turn(face: Face) -> float:
    """How far the face is turned aside: 0 frontal, +-0.5 the nose at a jaw end (68 points)."""
    p = face.landmarks68
    width = float(p[16, 0] - p[0, 0])
    if abs(width) < 1e-6:
        return 1.0
    return float((p[30, 0] - p[0, 0]) / width - 0.5)


def nose_aside(face: Face) -> float:
    """The nose's offset from the eyes' midpoint along the eye line, in inter-ocular distances
    (0 frontal, about +-1 in profile), from the detector's 5 points, else the 68-point fit's."""
    points = face.landmarks5 if face.landmarks5 is not None else landmarks5_from_68(face.landmarks68)
    left_eye, right_eye, nose = (np.asarray(points[k], np.float64) for k in range(3))
    eye_line = right_eye - left_eye
    iod2 = float(eye_line @ eye_line)
    if iod2 < 1e-6:
        return 1.0
    return float((nose - (left_eye + right_eye) / 2) @ eye_line / iod2)


def landmark_disagreement(face: Face) -> float:
    """Mean distance between the detector's 5 points and the 68-point fit's, in inter-ocular
    distances. (The landmarker keeps a detector's 5 points; for box-only detectors they come
    from the 68-point fit itself, and the two agree by construction.)"""
    detector_points = face.landmarks5
    if detector_points is None:
        return 0.0
    fit = landmarks5_from_68(face.landmarks68)
    iod = max(float(np.linalg.norm(detector_points[1] - detector_points[0])), 1e-6)
    return float(np.linalg.norm(fit - detector_points, axis=1).mean() / iod)


def refusal(crop: np.ndarray, face: Face) -> str | None:
    """Why a new face must not be painted on ``face`` (None: it may)."""
    if face.height < MIN_HEIGHT:
        return f"too small to render (under {MIN_HEIGHT} px)"
    if face.extra.get("verifier", 1.0) < MIN_VERIFIER:
        return f"doubted by the face/not-face verifier (under {MIN_VERIFIER})"
    if len(face.extra.get("votes", range(MIN_VOTES))) < MIN_VOTES:
        return "found by one detector of the ensemble only"
    if face.landmarks68 is None:
        return "no landmarks"
    if abs(turn(face)) > MAX_TURN or abs(nose_aside(face)) > MAX_NOSE_ASIDE:
        return "turned too far aside to render"
    if landmark_disagreement(face) > MAX_LANDMARK_DISAGREEMENT:
        return "landmarks do not fit a face"
    if onet_score(crop, face) < MIN_ONET:
        return "not a face to a second detector family (MTCNN O-Net)"
    if second_look_score(crop, face) < MIN_CONFIRM:
        return "not confirmed as a face by a second look"
    return None
