"""`faceanon evaluate video CLIP`: how well a method hides the people of a real clip, and how
steady it is. The clip is anonymized through the same runner as `faceanon anonymize`, then the
original and anonymized frames are read side by side and judged on the faces a *reference*
detector finds in the original:

* leak: share of reference faces where SFace, aligned with the original's landmarks (an
  attacker who knows where the face is), matches the anonymized face to the original above a
  threshold taken from pairs of *different* people in the same kind of footage
  (:data:`WILD_SFACE_THRESHOLD`, see :func:`different_people_threshold`), or does so aligned
  higher, on more forehead and hair, above that alignment's own threshold (the forehead
  attacker: models/recognizers.py ATTACKS; ``leaks_by_attack``). LFW's threshold
  (0.363) calls different people in one photo the same 8-9 % of the time. Judged are the
  reference faces of 24 px or more scored where the reference detector is >= 95 % precise on
  WIDER (:data:`REFERENCE_MIN_SCORE`); the rest (hands, fists, turned heads) are reported apart.
  A reference face the run did not anonymize is also shown to a third, independent face model
  (dlib's MMOD CNN on a zoomed crop, :data:`CONFIRMER`); the faces it does not confirm stay in
  every figure but are counted (``unconfirmed_missed_faces``, ``leaks_on_unconfirmed_faces``)
  and flagged in ``leaked``, to be looked at: MTCNN at 0.8 fires on a performer's hair (an
  untouched patch of hair "matches" itself), but MMOD also misses real heads thrown back.
  One case is set apart instead (``on_another_head``, counted, not judged): a small missed box
  MMOD does not confirm lying on the crown of a bigger reference face of the same frame
  (:func:`on_another_head`): a second face cannot show there, the first face's head is in
  the way;
  With the clip's annotated faces (``truth``: every face's box, frame by frame, as made for
  a clip cut from annotated photos), reference faces on no annotated face (IoU < 0.3:
  MTCNN at 0.8 also fires on knees and hair) are set apart instead (``not_annotated``,
  listed in ``set_apart``): they are no one's face, and judging them would count an
  untouched knee that "matches" itself as a leak;
* uncovered: reference faces that no face of the run overlaps, or whose box the output left
  (nearly) untouched, per frame (a face only grazed by a neighbour's blur is uncovered);
* identity consistency: SFace similarity of a track's consecutive anonymized faces over that of
  the original faces (1 = the new identity is as steady as the real one), on the faces the
  method itself drew (its fallback's blur is steady by nature and does not count); and
  ``consistency_ratio_steady``, the same without the pairs where a frame fades towards the
  fallback (a fade blurs the new face on purpose; that is not another identity);
* painted: share of lit faces the method itself (not its fallback) was applied to;
* flicker: mean change between consecutive frames inside the boxes of faces the method itself
  drew, anonymized over original (1 = no added flicker; shot cuts skipped);
* frames, frame rate and audio kept; speed of the anonymization (frames/s, wall clock).
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from ..detect import create_detector
from ..detect.tracking import ShotCuts, link_tracks
from ..io import video as video_io
from ..models.recognizers import ATTACKS, SAME_FOOTAGE_SFACE_THRESHOLD, attack_embeddings, matched_by, recognized_by
from ..types import Face

# The same-footage SFace threshold (models/recognizers.py) is the judge's, and the render gate's.
WILD_SFACE_THRESHOLD = SAME_FOOTAGE_SFACE_THRESHOLD
REFERENCE_DETECTOR = "centerface"
# The reference must not be a part of the run's own detector (a judge that is the accused finds
# nothing missing): runs whose detector uses CenterFace are judged against MTCNN.
SECOND_REFERENCE = "mtcnn"
MIN_REFERENCE_HEIGHT = 24  # px: smaller faces are not judged (recognizers cannot read them)
# Reference faces are judged from this score up: where the reference detector lies on an
# annotated WIDER face at least 95 % of the time (bench/wild_threshold.py). Below it come hands,
# fists and turned heads, which SFace finds "similar" to their blurred selves without their being
# anyone; they are counted apart (low_score_*), not dropped silently.
REFERENCE_MIN_SCORE = {"centerface": 0.35, "mtcnn": 0.8}
# Confirms a reference face the run missed: another family of face model, on a crop three times the
# face, scaled so the face is ~80 px (MMOD's window) - about 0.8 s a face, and only missed faces.
CONFIRMER = "dlib-mmod"
CONFIRM_CROP = 240
MIN_TRUTH_IOU = 0.3  # a reference face on an annotated face (truth) overlaps it this much
MIN_LIT = 40.0  # mean grey level inside the box: darker faces are not "lit"
UNCOVERED_CHANGE = 2.0  # mean largest-channel change (0-255) under which a face box is untouched
MIN_CONSISTENCY_HEIGHT = 40  # px: consecutive-frame similarity only where SFace reads faces
# The crown of a face's head, relative to its box (width w, height h): across the box widened by
# CROWN_SIDE * w each side, from CROWN_RISE * h above its top to CROWN_DROP * h below it (the
# forehead). Boxes there of at most CROWN_SIZE of the face's height are parts of that head.
CROWN_SIDE, CROWN_RISE, CROWN_DROP, CROWN_SIZE = 0.2, 0.6, 0.25, 0.6


def _ratio(anonymized: list[float], original: list[float], keep: list[bool]) -> float | None:
    a = [x for x, k in zip(anonymized, keep) if k]
    o = [x for x, k in zip(original, keep) if k]
    return round(float(np.mean(a) / np.mean(o)), 4) if o else None


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def _inner(box: np.ndarray, shape: tuple[int, int], keep: float = 0.6) -> tuple[slice, slice]:
    """The middle ``keep`` of a box, clipped to the image, as slices."""
    h, w = shape
    c = (box[:2] + box[2:4]) / 2
    half = (box[2:4] - box[:2]) * keep / 2
    x1, y1 = np.clip(np.floor(c - half), 0, [w - 1, h - 1]).astype(int)
    x2, y2 = np.clip(np.ceil(c + half), [x1 + 1, y1 + 1], [w, h]).astype(int)
    return slice(y1, y2), slice(x1, x2)


def different_people_threshold(pairs_similarity: np.ndarray, far: float) -> float:
    """The similarity that only ``far`` of different-people pairs exceed."""
    return float(np.quantile(np.asarray(pairs_similarity, np.float64), 1 - far))


def _detectors_used(config) -> str:
    """The run's detector and, for an ensemble, its members (the judges must be none of them)."""
    uses = config.detector + " " + str(config.detector_params.get("members", ""))
    if config.detector == "ensemble" and "members" not in config.detector_params:
        from ..detect.ensemble import DEFAULT_MEMBERS
        uses += " " + DEFAULT_MEMBERS
    return uses


def reference_for(config) -> str:
    """The reference detector for a run: CenterFace, or MTCNN when the run's detector uses CenterFace."""
    return SECOND_REFERENCE if REFERENCE_DETECTOR in _detectors_used(config) else REFERENCE_DETECTOR


def evaluate_clip(clip: Path, config, output: Path | None = None, reference: str | None = None,
                  progress: Callable[[str], None] | None = None, truth: list[np.ndarray] | None = None) -> dict:
    """Anonymize ``clip`` with the pipeline ``config`` (to ``output``, or a temporary file) and
    measure it against ``reference`` (default: :func:`reference_for` the run); ``truth``, when
    the clip's faces are annotated: per frame, an (N, 4) array of every face's x1, y1, x2, y2."""
    reference = reference or reference_for(config)
    from ..io import plan_jobs
    from ..models.recognizers import recognizer
    from ..pipeline import Pipeline
    from ..runner import RunOptions, anonymize_jobs

    clip = Path(clip)
    info_in = video_io.probe(clip)
    method = config.method
    pipeline = Pipeline(config)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(output) if output else Path(tmp) / f"anonymized{clip.suffix.lower()}"
        jobs = plan_jobs([str(clip)], str(out))
        start = time.perf_counter()
        report = anonymize_jobs(pipeline, jobs, RunOptions(keep_audio=True, progress=False), on_error=lambda m: None)
        seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError(report.errors[0])
        info_out = video_io.probe(out)
        done = [report.detections.get(f"{jobs[0].rel}#frame={i}", []) for i in range(info_in.frames or 0)]
        uses_confirmer = CONFIRMER in _detectors_used(config)
        result = _judge(clip, out, create_detector(reference), recognizer("sface"), method, done, progress,
                        min_score=REFERENCE_MIN_SCORE.get(reference, 0.0),
                        confirm=None if uses_confirmer else create_detector(CONFIRMER, upsample=0), mask_scale=config.mask_scale,
                        truth=truth)
        frames_out = sum(1 for _ in video_io.read_frames(out))
    frames_in = result.pop("frames")
    result.update({
        "clip": str(clip), "method": method, "params": {k: v for k, v in config.params.items() if k != "password"},
        "seed": config.seed, "detector": config.detector,
        "reference_detector": reference, "confirmer": None if uses_confirmer else CONFIRMER, "thresholds": {name: t for name, _, t in ATTACKS},
        "frames_in": frames_in, "frames_out": frames_out,
        "fps_in": round(info_in.fps, 3), "fps_out": round(info_out.fps, 3),
        "audio_in": info_in.has_audio, "audio_out": info_out.has_audio,
        "seconds": round(seconds, 2), "frames_per_second": round(frames_in / seconds, 2),
        "fallbacks": report.fallbacks, "faces_anonymized": report.faces,
    })
    return result


def _what_was_done(face: Face, done: list[dict], mask_scale: float = 1.3) -> dict | None:
    """The record of the anonymized face of the run over ``face`` (IoU >= 0.3, or ``face``
    lying >= 0.7 inside that face's anonymized region: the reference's box on a mouth or an eye
    of a face the run found whole), if any: its ``method`` and, if faded, ``fallback_weight``."""
    from ..detect.base import box_iou, inside_fraction

    if not done:
        return None
    boxes = np.array([d["box"] for d in done], np.float32)
    iou = box_iou(face.box, boxes)[0]
    inside = inside_fraction(face.box, boxes, mask_scale)[0]
    best = int(np.argmax(np.maximum(iou, inside)))
    return done[best] if iou[best] >= 0.3 or inside[best] >= 0.7 else None


def confirmed(confirm, frame: np.ndarray, face: Face) -> bool:
    """Whether ``confirm`` (a detector) finds ``face`` (IoU >= 0.3) on a zoomed crop around it."""
    from ..detect.base import look_again

    seen = look_again(confirm._detect_once, frame, face.box, CONFIRM_CROP / 3)
    return any(iou >= 0.3 for _, iou in seen)


def on_another_head(face: Face, others: list[Face]) -> bool:
    """Whether ``face`` is a small box on the crown (hair, top of the forehead) of a bigger face
    among ``others``: MTCNN takes a patch of hair above a face for a second, smaller face."""
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    for other in others:
        if other is face or face.height > CROWN_SIZE * other.height:
            continue
        x1, y1, x2, y2 = other.box
        w, h = x2 - x1, y2 - y1
        if x1 - CROWN_SIDE * w <= cx <= x2 + CROWN_SIDE * w and y1 - CROWN_RISE * h <= cy <= y1 + CROWN_DROP * h:
            return True
    return False


def on_annotated_faces(faces: list[Face], truth: np.ndarray) -> list[bool]:
    """Whether each face overlaps an annotated face box (``truth``: (N, 4) x1, y1, x2, y2) by
    IoU >= MIN_TRUTH_IOU."""
    from ..detect.base import box_iou

    truth = np.asarray(truth, np.float32).reshape(-1, 4)
    if not faces or not len(truth):
        return [False] * len(faces)
    return list(box_iou(np.stack([f.box for f in faces]), truth).max(axis=1) >= MIN_TRUTH_IOU)


def load_truth(path: Path) -> list[np.ndarray]:
    """Annotated faces of a clip from a JSON file ``{"frames": [[[x1, y1, x2, y2], ...], ...]}``
    (one list per frame); a bad file is one line naming it."""
    import json

    from ..errors import UsageError

    try:
        frames = json.loads(Path(path).read_text())["frames"]
        return [np.asarray(boxes, np.float32).reshape(-1, 4) for boxes in frames]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path}: not a face annotation file ({{\"frames\": [[[x1, y1, x2, y2], ...], ...]}}): {e}") from None


def _judge(original: Path, anonymized: Path, reference, sface, method: str, done: list[list[dict]], progress,
           min_score: float = 0.0, confirm=None, mask_scale: float = 1.3, truth: list[np.ndarray] | None = None) -> dict:
    """Reference faces of ``original`` judged in ``anonymized``; ``done`` holds, per frame, the
    faces the run anonymized (their box and method), which tells where the method itself (not
    its fallback) was applied. Faces the reference scores below ``min_score`` are judged apart
    (``low_score_*``) and take no part in the other figures. Faces the run did not anonymize
    where ``confirm`` (a detector of another family) sees no face are counted and flagged. With
    ``truth`` (annotated faces per frame), reference faces on none of them are set apart."""
    shots = ShotCuts()
    faces_by_frame: list[list[Face]] = []
    count = Counter()
    embeddings: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []
    flicker_anon = flicker_orig = 0.0
    previous: tuple[np.ndarray, np.ndarray] | None = None
    uncovered_frames: list[int] = []
    leaked: list[dict] = []
    set_apart: list[dict] = []
    for index, (a, b) in enumerate(zip(video_io.read_frames(original), video_io.read_frames(anonymized))):
        shots.see(a)
        found = [f for f in reference(a) if f.height >= MIN_REFERENCE_HEIGHT and f.landmarks5 is not None]
        if truth is not None:
            annotated = on_annotated_faces(found, truth[index] if index < len(truth) else np.zeros((0, 4)))
            for face in (f for f, on in zip(found, annotated) if not on):
                count["not_annotated"] += 1
                set_apart.append({"frame": index, "box": [round(float(v)) for v in face.box], "score": round(face.score, 3)})
            found = [f for f, on in zip(found, annotated) if on]
        faces = [f for f in found if f.score >= min_score]
        faces_by_frame.append(faces)
        grey = a.mean(axis=2)
        per_face = {}
        for low in (f for f in found if f.score < min_score):
            rows, cols = _inner(low.box, a.shape[:2])
            if grey[rows, cols].mean() >= MIN_LIT:
                count["low_score"] += 1
                count["low_score_leaks"] += bool(recognized_by(sface, a, b, low))
        records = [_what_was_done(face, done[index] if index < len(done) else [], mask_scale) for face in faces]
        what = [r.get("method") if r else None for r in records]
        faded = [bool(r and r.get("fallback_weight", 0) > 0) for r in records]
        for i, face in enumerate(faces):
            rows, cols = _inner(face.box, a.shape[:2])
            if grey[rows, cols].mean() < MIN_LIT:
                continue
            # Kept in every figure (a judge must not drop a real face it cannot confirm), but
            # flagged: MMOD misses heads thrown back, and MTCNN fires on hair.
            unsure = what[i] is None and confirm is not None and not confirmed(confirm, a, face)
            if unsure and on_another_head(face, faces):
                count["on_another_head"] += 1
                continue
            count["unconfirmed"] += unsure
            count["lit"] += 1
            change = np.abs(a[rows, cols].astype(np.int16) - b[rows, cols].astype(np.int16)).max(axis=2).mean()
            if what[i] is None or change < UNCOVERED_CHANGE:
                count["uncovered"] += 1
                uncovered_frames.append(index)
            attacks_a, attacks_b = attack_embeddings(sface, [a, b], face)
            e_a, e_b = attacks_a[0], attacks_b[0]  # aligned on the landmarks: for consistency below
            found = matched_by(attacks_a, attacks_b)
            if found:
                count["leaks"] += 1
                count["leaks_on_faces_the_run_missed"] += what[i] is None
                count["unconfirmed_leaks"] += unsure
                for name, _ in found:
                    count[f"leaks_{name}"] += 1
                leaked.append({"frame": index, "box": [round(float(v)) for v in face.box], "score": round(face.score, 3),
                               "similarity": {name: round(s, 3) for name, s in found}, "got": what[i], "confirmed": not unsure})
            per_face[i] = (e_a, e_b, what[i], faded[i])
            count["painted"] += what[i] == method
        embeddings.append(per_face)
        drawn = [f for f, m in zip(faces, what) if m == method]
        if previous is not None and index not in shots.cuts and drawn:
            mask = np.zeros(a.shape[:2], bool)
            for face in drawn:
                rows, cols = _inner(face.box, a.shape[:2], keep=1.0)
                mask[rows, cols] = True
            flicker_orig += float(np.abs(a.astype(np.int16) - previous[0])[mask].mean())
            flicker_anon += float(np.abs(b.astype(np.int16) - previous[1])[mask].mean())
        previous = (a.astype(np.int16), b.astype(np.int16))
        if progress is not None and index % 25 == 0:
            progress(f"judged {index + 1} frames")
    # identity consistency along reference tracks
    index_of = {id(f): (t, i) for t, faces in enumerate(faces_by_frame) for i, f in enumerate(faces)}
    sims_orig, sims_anon, steady = [], [], []
    for track in link_tracks(faces_by_frame, max_gap=0, cuts=shots.cuts):
        frames = sorted(track.faces)
        for t0, t1 in zip(frames, frames[1:]):
            f0, f1 = track.faces[t0], track.faces[t1]
            if min(f0.height, f1.height) < MIN_CONSISTENCY_HEIGHT:
                continue
            k0, k1 = index_of[id(f0)][1], index_of[id(f1)][1]
            if k0 in embeddings[t0] and k1 in embeddings[t1]:
                (a0, b0, m0, f0), (a1, b1, m1, f1) = embeddings[t0][k0], embeddings[t1][k1]
                if m0 == m1 == method:  # the method's own output in both frames, not its fallback
                    sims_orig.append(_cos(a0, a1))
                    sims_anon.append(_cos(b0, b1))
                    steady.append(not (f0 or f1))
    frames, lit = len(faces_by_frame), count["lit"]
    return {
        "frames": frames,
        "shot_cuts": sorted(shots.cuts),
        "reference_min_score": min_score,
        "reference_faces": sum(len(f) for f in faces_by_frame),
        "lit_faces": lit,
        "leak": round(count["leaks"] / lit, 4) if lit else None,
        "leaks": int(count["leaks"]),
        "leaks_on_faces_the_run_missed": int(count["leaks_on_faces_the_run_missed"]),
        "leaks_by_attack": {name: int(count[f"leaks_{name}"]) for name, _, _ in ATTACKS},
        "leaked": leaked[:50],
        "painted": round(count["painted"] / lit, 4) if lit else None,
        "uncovered": int(count["uncovered"]),
        "uncovered_per_frame": round(count["uncovered"] / frames, 4) if frames else None,
        "uncovered_frames": sorted(set(uncovered_frames))[:50],
        "consistency_pairs": len(sims_orig),
        "consistency_original": round(float(np.mean(sims_orig)), 4) if sims_orig else None,
        "consistency_anonymized": round(float(np.mean(sims_anon)), 4) if sims_anon else None,
        "consistency_ratio": _ratio(sims_anon, sims_orig, [True] * len(sims_orig)),
        # the same without the pairs where a frame fades towards the fallback (a fade blurs the
        # new face on purpose: that is not another identity)
        "consistency_steady_pairs": int(sum(steady)),
        "consistency_ratio_steady": _ratio(sims_anon, sims_orig, steady),
        "flicker_ratio": round(flicker_anon / flicker_orig, 4) if flicker_orig > 0 else None,
        "low_score_faces": int(count["low_score"]),
        "low_score_leak": round(count["low_score_leaks"] / count["low_score"], 4) if count["low_score"] else None,
        "unconfirmed_missed_faces": int(count["unconfirmed"]),
        "leaks_on_unconfirmed_faces": int(count["unconfirmed_leaks"]),
        "on_another_head": int(count["on_another_head"]),
        **({"not_annotated": int(count["not_annotated"]), "set_apart": set_apart[:50]} if truth is not None else {}),
    }
