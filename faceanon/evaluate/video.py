"""`faceanon evaluate video CLIP`: how well a method hides the people of a real clip, and how
steady it is. The clip is anonymized through the same runner as `faceanon anonymize`, then the
original and anonymized frames are read side by side and judged on the faces a *reference*
detector finds in the original:

* leak: share of reference faces where SFace, aligned with the original's landmarks (an
  attacker who knows where the face is), matches the anonymized face to the original above a
  threshold taken from pairs of *different* people in the same kind of footage
  (:data:`WILD_SFACE_THRESHOLD`, see :func:`different_people_threshold`). LFW's threshold
  (0.363) calls different people in one photo the same 8-9 % of the time;
* uncovered: reference faces whose box the output left (nearly) untouched, per frame;
* identity consistency: SFace similarity of a track's consecutive anonymized faces over that of
  the original faces (1 = the new identity is as steady as the real one), on the faces the
  method itself drew (its fallback's blur is steady by nature and does not count);
* painted: share of lit faces the method itself (not its fallback) was applied to;
* flicker: mean change between consecutive frames inside the boxes of faces the method itself
  drew, anonymized over original (1 = no added flicker; shot cuts skipped);
* frames, frame rate and audio kept; speed of the anonymization (frames/s, wall clock).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..detect import create_detector
from ..detect.tracking import ShotCuts, link_tracks
from ..io import video as video_io
from ..types import Face

# SFace's cosine similarity above which two faces cut from one kind of footage count as the same
# person: the FAR 1e-2 point of pairs of different people in the same photo (1,882 pairs: every
# two faces of 32 px or more that YuNet finds at >= 0.8 in one of 126 WIDER dev photos), from
# `python bench/wild_threshold.py` (bench/results/wild_threshold.json). FAR 1e-2, not 1e-3: the
# 1e-3 point of ~2,000 pairs rests on two of them. LFW's 0.363 passes 6.8 % of these pairs.
WILD_SFACE_THRESHOLD = 0.537
REFERENCE_DETECTOR = "centerface"
MIN_REFERENCE_HEIGHT = 24  # px: smaller faces are not judged (recognizers cannot read them)
MIN_LIT = 40.0  # mean grey level inside the box: darker faces are not "lit"
UNCOVERED_CHANGE = 2.0  # mean largest-channel change (0-255) under which a face box is untouched
MIN_CONSISTENCY_HEIGHT = 40  # px: consecutive-frame similarity only where SFace reads faces


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


def evaluate_clip(clip: Path, config, output: Path | None = None, reference: str = REFERENCE_DETECTOR,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Anonymize ``clip`` with the pipeline ``config`` (to ``output``, or a temporary file) and
    measure it."""
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
        result = _judge(clip, out, create_detector(reference), recognizer("sface"), method, done, progress)
        frames_out = sum(1 for _ in video_io.read_frames(out))
    frames_in = result.pop("frames")
    result.update({
        "clip": str(clip), "method": method, "params": {k: v for k, v in config.params.items() if k != "password"},
        "seed": config.seed, "detector": config.detector,
        "reference_detector": reference, "threshold": WILD_SFACE_THRESHOLD,
        "frames_in": frames_in, "frames_out": frames_out,
        "fps_in": round(info_in.fps, 3), "fps_out": round(info_out.fps, 3),
        "audio_in": info_in.has_audio, "audio_out": info_out.has_audio,
        "seconds": round(seconds, 2), "frames_per_second": round(frames_in / seconds, 2),
        "fallbacks": report.fallbacks, "faces_anonymized": report.faces,
    })
    return result


def _what_was_done(face: Face, done: list[dict]) -> str | None:
    """The method the run applied to the anonymized face over ``face`` (IoU >= 0.3), if any."""
    from ..detect.base import box_iou

    if not done:
        return None
    iou = box_iou(face.box, np.array([d["box"] for d in done], np.float32))[0]
    best = int(np.argmax(iou))
    return done[best].get("method") if iou[best] >= 0.3 else None


def _judge(original: Path, anonymized: Path, reference, sface, method: str, done: list[list[dict]], progress) -> dict:
    """Reference faces of ``original`` judged in ``anonymized``; ``done`` holds, per frame, the
    faces the run anonymized (their box and method), which tells where the method itself (not
    its fallback) was applied."""
    shots = ShotCuts()
    faces_by_frame: list[list[Face]] = []
    leaks = judged = uncovered = lit = 0
    embeddings: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []
    flicker_anon = flicker_orig = 0.0
    previous: tuple[np.ndarray, np.ndarray] | None = None
    uncovered_frames: list[int] = []
    leaked: list[dict] = []
    painted = 0
    for index, (a, b) in enumerate(zip(video_io.read_frames(original), video_io.read_frames(anonymized))):
        shots.see(a)
        faces = [f for f in reference(a) if f.height >= MIN_REFERENCE_HEIGHT and f.landmarks5 is not None]
        faces_by_frame.append(faces)
        grey = a.mean(axis=2)
        per_face = {}
        what = [_what_was_done(face, done[index] if index < len(done) else []) for face in faces]
        for i, face in enumerate(faces):
            rows, cols = _inner(face.box, a.shape[:2])
            if grey[rows, cols].mean() < MIN_LIT:
                continue
            lit += 1
            change = np.abs(a[rows, cols].astype(np.int16) - b[rows, cols].astype(np.int16)).max(axis=2).mean()
            if change < UNCOVERED_CHANGE:
                uncovered += 1
                uncovered_frames.append(index)
            e_a, e_b = sface.embed(a, face), sface.embed(b, face)
            judged += 1
            similarity = _cos(e_a, e_b)
            if similarity >= WILD_SFACE_THRESHOLD:
                leaks += 1
                leaked.append({"frame": index, "box": [round(float(v)) for v in face.box],
                               "similarity": round(similarity, 3), "got": what[i]})
            per_face[i] = (e_a, e_b, what[i])
            painted += per_face[i][2] == method
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
    sims_orig, sims_anon = [], []
    for track in link_tracks(faces_by_frame, max_gap=0, cuts=shots.cuts):
        frames = sorted(track.faces)
        for t0, t1 in zip(frames, frames[1:]):
            f0, f1 = track.faces[t0], track.faces[t1]
            if min(f0.height, f1.height) < MIN_CONSISTENCY_HEIGHT:
                continue
            k0, k1 = index_of[id(f0)][1], index_of[id(f1)][1]
            if k0 in embeddings[t0] and k1 in embeddings[t1]:
                (a0, b0, m0), (a1, b1, m1) = embeddings[t0][k0], embeddings[t1][k1]
                if m0 == m1 == method:  # the method's own output in both frames, not its fallback
                    sims_orig.append(_cos(a0, a1))
                    sims_anon.append(_cos(b0, b1))
    frames = len(faces_by_frame)
    return {
        "frames": frames,
        "shot_cuts": sorted(shots.cuts),
        "reference_faces": sum(len(f) for f in faces_by_frame),
        "lit_faces": lit,
        "leak": round(leaks / judged, 4) if judged else None,
        "leaks": int(leaks),
        "leaked": leaked[:50],
        "painted": round(painted / judged, 4) if judged else None,
        "uncovered": int(uncovered),
        "uncovered_per_frame": round(uncovered / frames, 4) if frames else None,
        "uncovered_frames": sorted(set(uncovered_frames))[:50],
        "consistency_pairs": len(sims_orig),
        "consistency_original": round(float(np.mean(sims_orig)), 4) if sims_orig else None,
        "consistency_anonymized": round(float(np.mean(sims_anon)), 4) if sims_anon else None,
        "consistency_ratio": round(float(np.mean(sims_anon) / np.mean(sims_orig)), 4) if sims_orig else None,
        "flicker_ratio": round(flicker_anon / flicker_orig, 4) if flicker_orig > 0 else None,
    }
