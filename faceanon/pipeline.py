"""read -> detect -> landmarks/align -> anonymize -> compose -> write, for one image at a time.

:class:`Pipeline` holds the chosen detector and anonymizer and transforms RGB arrays; the
file handling (reading, writing, folders, video) lives in :mod:`faceanon.io` and
:mod:`faceanon.runner`.
"""
from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from .align import Landmarker, landmarks5_from_68
from .anonymize import REGION_SHAPES, Anonymizer, create_anonymizer, region_mask, render_gate
from .anonymize.region import region_bounds
from .compose import blend, feathered_alpha
from .detect import DEFAULT_DETECTOR, DETECTORS, create_detector
from .detect.base import inside_fraction
from .detect.tracking import ShotCuts, appearance, cover_tracks, link_tracks
from .errors import CannotAnonymize, UsageError
from .io.video import encode_round_trip
from .registry import check_range
from .types import Face


MASK_SCALE_RANGE = (0.5, 4.0)  # how much the replaced region may grow or shrink about the face box


@dataclass
class PipelineConfig:
    method: str = "blur"
    params: dict = field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    detector_params: dict = field(default_factory=dict)
    region: str = "ellipse"
    mask_scale: float = 1.3
    feather: float = 0.08  # feather width as a fraction of the face's larger side
    seed: int = 0
    # Fail closed: a face the method cannot anonymize (or leaves unchanged) gets this filter.
    fallback: str = "blur"
    fallback_params: dict = field(default_factory=lambda: {"ratio": 0.5})
    # New faces a recognizer still matches to the person get other candidates, then the fallback.
    # Off only to measure a method's own strength curve (evaluate's controllability): with it on,
    # the small angles the gate refuses show the fallback's similarity, not the method's.
    recognizer_gate: bool = True


class Pipeline:
    def __init__(self, config: PipelineConfig | None = None, **kwargs) -> None:
        config = config or PipelineConfig(**kwargs)
        if config.region not in REGION_SHAPES:
            raise UsageError(f"unknown region shape {config.region!r}; choose from: {', '.join(REGION_SHAPES)}")
        check_range("--mask-scale", config.mask_scale, *MASK_SCALE_RANGE)
        self.config = config
        self.anonymizer = create_anonymizer(config.method, **config.params)
        self.fallback = create_anonymizer(config.fallback, **config.fallback_params)
        if self.fallback.needs_landmarks5 or self.fallback.needs_landmarks68:
            raise UsageError(f"fallback {config.fallback!r} needs landmarks; the fallback must run on a box alone")
        # Detector parameters are checked now; the detector itself loads on first use.
        DETECTORS.parse_params(config.detector, config.detector_params)
        self._detector = None
        self._landmarker = None
        # Video tracks' chosen identity: the index of the candidate chosen on their sample frames
        # (plan_video), else at their first drawn frame (its seed: candidate_seed).
        self._track_candidates: dict[int, int] = {}
        # Video tracks a frame of which was still recognized: frames left before it is drawn in full.
        self._fading_back: dict[int, int] = {}

    @property
    def detector(self):
        if self._detector is None:
            self._detector = create_detector(self.config.detector, **self.config.detector_params)
        return self._detector

    @property
    def needs_landmarks68(self) -> bool:
        return self.anonymizer.needs_landmarks68 or self.config.region == "hull"

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._after_detection(image, self.detector(image))

    def _after_detection(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        faces = drop_nested(faces, self.config.mask_scale)
        self.add_landmarks(image, faces)
        return faces

    def add_landmarks(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Give every face the landmarks the method needs: box-only detectors (dlib HOG/MMOD)
        get them from dlib's 68-point model, which also fills the 5 points."""
        if self.needs_landmarks68:
            todo = [f for f in faces if f.landmarks68 is None]
        elif self.anonymizer.needs_landmarks5:
            todo = [f for f in faces if f.landmarks5 is None]
        else:
            return faces
        if todo:
            if self._landmarker is None:
                self._landmarker = Landmarker(68)
            self._landmarker(image, todo)
        return faces

    def anonymize(self, image: np.ndarray, faces: list[Face] | None = None, seed: int | None = None) -> tuple[np.ndarray, list[Face]]:
        """The image with every face anonymized, and the faces used. ``image`` is RGB uint8 and
        is not modified."""
        image = as_rgb(image)
        if faces is None:
            faces = self.detect(image)
        else:
            self.add_landmarks(image, faces)
        seed = self.config.seed if seed is None else seed
        self.anonymizer.seed = seed
        out = image.copy()
        # Least sure first, so the surest faces (the ones new faces are drawn on) are laid last,
        # over the blur of a stray box on their ear or cheek, not under it.
        order = sorted(range(len(faces)), key=lambda i: sureness(faces[i]))
        for index in order:
            face = faces[index]
            # The same track (video) or index (image) gets the same randomness for one seed.
            rng = face_rng(seed, face.track_id if face.track_id is not None else index)
            self._anonymize_face_inplace(out, face, rng, source=image)
        return out, faces

    def _window(self, image: np.ndarray, face: Face) -> tuple[int, int, int, int] | None:
        """The part of ``image`` one face is anonymized in: its region plus context for the
        filters and room for the feather (None when the region lies outside the image)."""
        h, w = image.shape[:2]
        cfg = self.config
        side = max(face.width, face.height, 1.0)
        bx1, by1, bx2, by2 = region_bounds(face, cfg.region, cfg.mask_scale)
        pad = cfg.feather * side * 2 + 0.15 * side + 2
        x0, y0 = int(max(0, np.floor(bx1 - pad))), int(max(0, np.floor(by1 - pad)))
        x1, y1 = int(min(w, np.ceil(bx2 + pad))), int(min(h, np.ceil(by2 + pad)))
        return None if x1 - x0 < 2 or y1 - y0 < 2 else (x0, y0, x1, y1)

    def _anonymize_face_inplace(self, image: np.ndarray, face: Face, rng: np.random.Generator,
                                source: np.ndarray | None = None) -> None:
        """Anonymize one face in place. Fails closed: when the method cannot run on the face,
        raises, or leaves the face box (nearly) unchanged, the fallback filter is applied instead
        and ``face.extra`` says so (``method``, and ``fallback``: the reason).

        A method that paints new faces draws from ``source`` (the untouched picture), so that
        another face's blur overlapping this one does not enter the new face or the checks on
        it, and the result is laid over ``image`` as it is now. Filters work on ``image`` as it
        is now: where two regions overlap, both filters apply (more hiding, never less).

        A face that carries ``extra["render_refusal"]`` (a video's track verdict, see
        :meth:`plan_video`; None = allowed) is not put through the render gate again."""
        window = self._window(image, face)
        if window is None:
            face.extra["method"] = "none"  # the region lies outside the image: nothing to hide
            return
        x0, y0, x1, y1 = window
        feather = self.config.feather * max(face.width, face.height, 1.0)
        crop = image[y0:y1, x0:x1].copy()
        paints = self.anonymizer.paints_new_faces
        clean = source[y0:y1, x0:x1] if paints and source is not None else crop
        local = face.shifted(x0, y0)
        reason = None
        try:
            if paints:
                # no new face on a non-face, a profile, ...
                reason = face.extra["render_refusal"] if "render_refusal" in face.extra else render_gate.refusal(clean, local)
            if reason is None:
                out, reason = self._draw_a_candidate(crop, clean, local, rng, feather, face)
        except CannotAnonymize as e:
            reason = str(e)
        except Exception as e:  # noqa: BLE001 - one face's failure must not leave it visible
            reason = f"{self.anonymizer.name} failed ({type(e).__name__}: {e})"
        if reason is None:
            face.extra["method"] = self.anonymizer.name
            out = self._faded(out, local, rng, feather, face.extra.get("fallback_weight", 0.0))
        else:
            out = self._apply(self.fallback, crop, local, rng, feather)
            face.extra["method"], face.extra["fallback"] = self.fallback.name, reason
        image[y0:y1, x0:x1] = out

    def _draw_a_candidate(self, crop: np.ndarray, clean: np.ndarray, local: Face, rng: np.random.Generator,
                          feather: float, face: Face) -> tuple[np.ndarray, str | None]:
        """:meth:`_draw`, and where the recognizer still knows the person or the gender changed,
        other identities: methods that offer candidates (``offers_candidates``) try up to
        RENDER_CANDIDATES. A video track keeps one identity: the one its plan chose on frames
        spread over it (:meth:`plan_video`), else the first that passed at its first drawn frame.
        A frame of it still recognized gets the fallback, and the next ones fade back in."""
        track = face.track_id
        seed = self.anonymizer.seed
        chosen = self._track_candidates.get(track) if track is not None else None
        offers = self.anonymizer.offers_candidates
        tries = RENDER_CANDIDATES if offers and chosen is None else 1
        memo: dict = {}  # the original's embeddings, the same for every candidate
        # A new face the gender network reads as the other gender is a worse candidate: the next
        # ones are tried; if none keeps the gender and passes the recognizer gate, the first of
        # the others that passes it. The gate costs twenty times the gender check, so those
        # others meet it only then.
        other_gender: list[tuple[int, np.ndarray, np.ndarray]] = []
        try:
            for candidate in range(tries):
                self._use_candidate(seed, chosen if chosen is not None else candidate)
                out, drawn, reason = self._draw(crop, clean, local, rng, feather)
                if drawn is not None and tries > 1 and not self._same_gender(clean, drawn, local, memo):
                    other_gender.append((candidate, out, drawn))
                    continue
                if drawn is not None:
                    reason = self._recognized(clean, drawn, local, memo)
                if not (reason or "").startswith(STILL_RECOGNIZABLE):
                    break
            else:
                for candidate, out, drawn in other_gender:
                    reason = self._recognized(clean, drawn, local, memo)
                    if reason is None:
                        break
        finally:
            self._use_candidate(seed, 0)
        if reason is None:
            if offers and candidate > 0:
                face.extra["candidate"] = candidate
            if track is not None and chosen is None:
                self._track_candidates[track] = candidate
            if self._fading_back.get(track):
                # drawn again after a frame that got the fallback: fade back in over FADE_FRAMES
                weight = self._fading_back[track] / (FADE_FRAMES + 1)
                face.extra["fallback_weight"] = max(face.extra.get("fallback_weight", 0.0), weight)
                self._fading_back[track] -= 1
        elif track is not None and reason.startswith(STILL_RECOGNIZABLE):
            # this frame gets the fallback; the track's identity stays, and its next frames
            # fade back to it (the frames before could not know, they are written already)
            self._fading_back[track] = FADE_FRAMES
        return out, reason

    def _use_candidate(self, seed: int, candidate: int) -> None:
        """The method draws its ``candidate``-th identity for the run's ``seed`` (0: its own)."""
        self.anonymizer.seed, self.anonymizer.candidate = candidate_seed(seed, candidate), candidate

    @staticmethod
    def _same_gender(clean: np.ndarray, out: np.ndarray, face: Face, memo: dict) -> bool:
        from .models.attributes import same_gender  # loaded only where new faces are drawn

        return same_gender(clean, out, face, memo)

    def _draw(self, crop: np.ndarray, clean: np.ndarray, face: Face, rng: np.random.Generator,
              feather: float) -> tuple[np.ndarray, np.ndarray, str | None]:
        """The method's result over ``crop`` (drawn from ``clean``, see above); the new face alone
        over ``clean``, what the checks judge (None: nothing was drawn); and why it must not be
        used (None: it may, if the recognizer gate, :meth:`_recognized`, agrees)."""
        pixels, alpha = self._render(self.anonymizer, clean, face, rng, feather)
        drawn = blend(clean, pixels, alpha)
        out = drawn if clean is crop else blend(crop, pixels, alpha)
        if unchanged(clean, drawn, face.box):
            # A flat patch (night sky, a plain wall: recall-first detectors fire there) that the
            # fallback cannot change either holds nothing to hide: no warning.
            flat = unchanged(crop, self._apply(self.fallback, crop, face, rng, feather), face.box)
            return out, None, None if flat else "the method left the face unchanged"
        return out, drawn, None

    def _recognized(self, clean: np.ndarray, drawn: np.ndarray, face: Face, memo: dict | None = None) -> str | None:
        """The recognizer gate's verdict on a new face (:meth:`_still_recognized`), for methods that
        paint new faces when the gate is on; None otherwise."""
        if self.anonymizer.paints_new_faces and self.config.recognizer_gate:
            return self._still_recognized(clean, drawn, face, memo)
        return None

    def _still_recognized(self, crop: np.ndarray, out: np.ndarray, face: Face, memo: dict | None = None) -> str | None:
        """The recognizer gate on a drawn face: SFace compares the new face with the one it
        replaces, aligned with the original's landmarks and aligned higher, on more forehead
        and hair (models/recognizers.py: ATTACKS); at or above either attacker's same-footage
        threshold (different people in one photo pass it 1 % of the time) the new face still
        shows the person, and the fallback is used. Small crowd faces, and faces whose hair and
        hairline say who they are, are where this happens: the method changes the face up to
        the forehead, not the hair."""
        if face.landmarks5 is None:
            return None
        from .models.recognizers import ATTACKS, recognized_by, recognizer

        found = recognized_by(recognizer("sface"), crop, out, face, memo)
        if not found:
            return None
        thresholds = {name: threshold for name, _, threshold in ATTACKS}
        return f"{STILL_RECOGNIZABLE} (" + ", ".join(f"SFace {name} >= {thresholds[name]}" for name, _ in found) + ")"

    def _examine(self, image: np.ndarray, face: Face) -> None:
        """Video pass 1, for methods that paint new faces: the render gate's verdict on this
        detection and, where it may be drawn on, the identity the method would change."""
        window = self._window(image, face)
        if window is None:
            face.extra["render_refusal"] = "outside the frame"
            return
        x0, y0, x1, y1 = window
        crop, local = image[y0:y1, x0:x1], face.shifted(x0, y0)
        reason = render_gate.refusal(crop, local)
        face.extra["render_refusal"] = reason
        if reason is None:
            try:
                code = self.anonymizer.identity_code(crop, local)
            except Exception:  # noqa: BLE001 - the face is then judged frame by frame
                code = None
            if code is not None:
                face.extra["identity_code"] = code

    def plan_video(self, frames: Iterable[np.ndarray], fps: float,
                   on_frame: Callable[[int], None] | None = None,
                   frames_again: Callable[[], Iterable[np.ndarray]] | None = None,
                   on_check: Callable[[int], None] | None = None) -> tuple[list[list[Face]], list[int]]:
        """Video pass 1: detect on every frame, link the detections into tracks and decide, per
        track, what each frame must anonymize (detect/tracking.py: gaps bridged, boxes and
        landmarks smoothed, a cover before and after, tracks cut at shot changes). Returns the faces of every frame and the
        frames whose detection failed (to be blacked out: fail closed).

        For methods that paint new faces, a track is one person: most of its detections must
        pass the render gate or none of it is drawn on (it gets the fallback, so a person does
        not flip between a new face and a blur), and it keeps one new identity: the method's
        identity code averaged over the track (``extra["track_identity"]``), so only pose,
        expression and light follow the frame. With ``frames_again`` (the frames from the start
        once more; a list of frames is read twice by itself), that identity is chosen on sample
        frames spread over the track, not at its first, and every detected frame is drawn and
        put to the recognizer gate ahead of pass 2 (:meth:`_recheck_drawn_frames`; ``on_check``
        gets the index of each frame checked)."""
        if frames_again is None and isinstance(frames, list):
            frames_again = lambda: frames  # noqa: E731
        detections: list[list[Face]] = []
        failed: list[int] = []
        paints = self.anonymizer.paints_new_faces
        self._track_candidates = {}  # track ids start again with every video
        self._fading_back = {}
        shots = ShotCuts()
        # A method that paints reads every member on every frame: the render gate wants both
        # members' votes and the recognizer check their landmarks, and detection is a small
        # part of its cost; a filter lets an ensemble skip a member on some frames (faster).
        detected = self.detector.detect_frames(frames, then=self._after_detection, every_frame=paints)
        for index, (frame, faces) in enumerate(detected):
            shots.see(frame)
            if faces is None:  # detection failed: said by the caller; the frame is blacked out
                failed.append(index)
                faces = []
            for face in faces:
                face.extra["appearance"] = appearance(frame, face.box)
                if paints:
                    self._examine(frame, face)
            detections.append(faces)
            if on_frame is not None:
                on_frame(index)
        tracks = link_tracks(detections, max_gap=max(3, round(fps * TRACK_GAP_SECONDS)), cuts=shots.cuts)
        plan = cover_tracks(tracks, len(detections), padding=max(2, round(fps * TRACK_PADDING_SECONDS)), cuts=shots.cuts)
        if paints:
            verdicts = {t.track_id: _track_verdict(t.faces.values()) for t in tracks}
            for faces in plan:
                for face in faces:
                    refusal, identity = verdicts[face.track_id]
                    if face.extra.get("padding"):
                        face.extra["render_refusal"] = "no detection in this frame (cover before or after its track)"
                    elif refusal is not None:
                        face.extra["render_refusal"] = refusal
                    elif identity is not None:
                        # detected frames keep their own verdict; interpolated ones have none and
                        # are looked at by the gate in pass 2
                        face.extra["track_identity"] = identity
            if frames_again is not None:
                self._recheck_drawn_frames(plan, frames_again, on_check)
            _refuse_brief_drawn_runs(plan)
            _fade_into_refusals(plan)
            if frames_again is not None and self.config.recognizer_gate:
                # a faded frame refused brings the fade closer to its neighbours: check again
                for _ in range(FADE_CHECKS):
                    if not self._check_faded_frames(plan, frames_again):
                        break
                    _refuse_brief_drawn_runs(plan)
                    _fade_into_refusals(plan)
                else:
                    _fade_unchecked_fully(plan)
        for faces in plan:
            for face in faces:
                face.extra.pop("appearance", None)
                face.extra.pop("identity_code", None)
                face.extra.pop("checked_weight", None)
        return plan, failed

    def _recheck_drawn_frames(self, plan: list[list[Face]], frames_again: Callable[[], Iterable[np.ndarray]],
                              on_check: Callable[[int], None] | None = None) -> None:
        """Between the video passes: the frames are read again to choose each track's new
        identity on a few of its frames (:meth:`_choose_track_identities`), then again to draw
        it on every detected frame the render gate let through and put the recognizer gate to
        it. A frame whose new face is still recognizable is refused here, in the plan, so that
        its track fades to the fallback and back (and a brief stretch between two such frames
        is not drawn at all) instead of switching in one frame, which is all pass 2, writing
        frames in order, could do. Only the chosen sample frames' face windows are held."""
        if not self.config.recognizer_gate:
            return
        drawable: dict[int, list[tuple[int, Face]]] = {}
        for index, faces in enumerate(plan):
            for face in faces:
                # detected frames the gate let through (interpolated ones carry no verdict)
                if "track_identity" in face.extra and face.extra.get("render_refusal", "") is None:
                    drawable.setdefault(face.track_id, []).append((index, face))
        if not drawable:
            return
        if self.anonymizer.offers_candidates:
            refused = self._choose_track_identities(drawable, frames_again())
            for faces in plan:
                for face in faces:
                    if face.track_id in refused and not face.extra.get("padding"):
                        face.extra["render_refusal"] = refused[face.track_id]
        wanted: dict[int, list[Face]] = {}
        for seen in drawable.values():
            for index, face in seen:
                if face.extra.get("render_refusal") is None:
                    wanted.setdefault(index, []).append(face)
        for face, margin in self._check_margins(frames_again, wanted, faded=False, on_check=on_check):
            if margin < VIDEO_GATE_MARGIN:
                face.extra["render_refusal"] = f"{STILL_RECOGNIZABLE} (within {VIDEO_GATE_MARGIN} of a threshold)"

    def _check_margins(self, frames_again: Callable[[], Iterable[np.ndarray]], wanted: dict[int, list[Face]],
                       faded: bool, on_check: Callable[[int], None] | None = None) -> list[tuple[Face, float]]:
        """The video check's reading of each face of ``wanted`` (frame index -> faces), the
        frames read again: its track's new face drawn on it (faded by its ``fallback_weight``
        when ``faded``) and its :meth:`_recognition_margin`. A face that cannot be drawn is
        left out (pass 2 meets it again and says why)."""
        margins = []
        seed = self.config.seed
        try:
            for index, frame in _frames_at(frames_again(), wanted):
                for face in wanted[index]:
                    sample = self._face_window(frame, face)
                    if sample is None:
                        continue
                    self._use_candidate(seed, self._track_candidates.get(face.track_id, 0))
                    weight = face.extra.get("fallback_weight", 0.0) if faded else 0.0
                    try:
                        margins.append((face, self._recognition_margin(*sample, face.track_id, weight=weight)))
                    except Exception:  # noqa: BLE001 - see the docstring
                        continue
                if on_check is not None:
                    on_check(index)
        finally:
            self._use_candidate(seed, 0)
        return margins

    def _check_faded_frames(self, plan: list[list[Face]], frames_again: Callable[[], Iterable[np.ndarray]]) -> bool:
        """The frames of the plan that fade towards the fallback, drawn and faded as pass 2 will
        write them and put to the video check (the check before judged them unfaded); those still
        recognizable are refused. Each face remembers the weight it passed at
        (``extra["checked_weight"]``; one that could not be drawn has none: pass 2 cannot draw it
        either and gives it the fallback). Returns whether any frame was refused."""
        wanted: dict[int, list[Face]] = {}
        for index, faces in enumerate(plan):
            for face in faces:
                weight = face.extra.get("fallback_weight", 0.0)
                if (weight > 0 and face.extra.get("render_refusal") is None and "track_identity" in face.extra
                        and face.extra.get("checked_weight") != weight):
                    wanted.setdefault(index, []).append(face)
        refused = False
        for face, margin in self._check_margins(frames_again, wanted, faded=True):
            if margin < VIDEO_GATE_MARGIN:
                face.extra["render_refusal"] = f"{STILL_RECOGNIZABLE} while fading (within {VIDEO_GATE_MARGIN} of a threshold)"
                refused = True
            else:
                face.extra["checked_weight"] = face.extra["fallback_weight"]
        return refused

    def _recognition_margin(self, crop: np.ndarray, face: Face, feather: float, track: int,
                            memo: dict | None = None, weight: float = 0.0) -> float:
        """How far under its threshold the recognizer gate's closest attacker stays on the new face
        the method (at its current seed) draws on ``face`` of ``track``, faded by ``weight``
        (:meth:`_faded`), as a viewer of the encoded video gets it: negative, it is still
        recognizable; -1 when the method left the face unchanged."""
        return self._judged(crop, face, feather, track, memo, weight)[0]

    def _judged(self, crop: np.ndarray, face: Face, feather: float, track: int,
                memo: dict | None = None, weight: float = 0.0) -> tuple[float, np.ndarray | None]:
        """:meth:`_recognition_margin`, and the new face as it is written (None: not drawn)."""
        from .models.recognizers import closest_margin, recognizer

        if face.landmarks5 is None:
            return np.inf, None  # as the gate: nothing to align an attacker with
        # the randomness pass 2 gives this track, so the check judges the face pass 2 will write
        rng = face_rng(self.config.seed, track)
        drawn = self._apply(self.anonymizer, crop, face, rng, feather)
        if unchanged(crop, drawn, face.box):
            return -1.0, None
        # Judged as the encoder will write it: on the new faces of the dev clip and a crowd pan,
        # encoding moved the closest attacker's reading by up to 0.07 either way.
        written = encode_round_trip(self._faded(drawn, face, rng, feather, weight))
        return closest_margin(recognizer("sface"), crop, written, attacker_alignments(face), memo), written

    def _face_window(self, frame: np.ndarray, face: Face) -> tuple[np.ndarray, Face, float] | None:
        """The part of ``frame`` the face is anonymized in (a copy), the face in it and its feather."""
        window = self._window(frame, face)
        if window is None:
            return None
        x0, y0, x1, y1 = window
        feather = self.config.feather * max(face.width, face.height, 1.0)
        return as_rgb(frame)[y0:y1, x0:x1].copy(), face.shifted(x0, y0), feather

    def _choose_track_identities(self, drawable: dict[int, list[tuple[int, Face]]],
                                 frames: Iterable[np.ndarray]) -> dict[int, str]:
        """For methods that offer candidate identities: every track tries its candidate
        identities on up to CHOICE_FRAMES of its ``drawable`` frames, spread over it, and keeps
        the best (:meth:`_choose_identity`). Chosen at its first frame, the main speaker of the
        dev clip was recognized five frames later and blurred for the next 120. Returns the
        tracks every candidate failed, with the reason."""
        wanted: dict[int, list[Face]] = {}
        last_sample: dict[int, int] = {}
        for track, seen in drawable.items():
            picks = np.unique(np.linspace(0, len(seen) - 1, min(CHOICE_FRAMES, len(seen))).round().astype(int))
            for k in picks:
                wanted.setdefault(seen[k][0], []).append(seen[k][1])
            last_sample[track] = seen[picks[-1]][0]
        refused: dict[int, str] = {}
        samples: dict[int, list[tuple[np.ndarray, Face, float]]] = {}
        for index, frame in _frames_at(frames, wanted):
            for face in wanted[index]:
                sample = self._face_window(frame, face)
                if sample is not None:
                    samples.setdefault(face.track_id, []).append(sample)
                if index == last_sample[face.track_id]:
                    reason = self._choose_identity(face.track_id, samples.pop(face.track_id, []))
                    if reason is not None:
                        refused[face.track_id] = reason
        return refused

    def _choose_identity(self, track: int, samples: list[tuple[np.ndarray, Face, float]]) -> str | None:
        """Of the candidate identities for ``track``, the one whose new face the recognizer gate's
        closest attack stays furthest from on its worst sample (its index goes to
        ``_track_candidates``), so that the frames between the samples (each checked afterwards)
        pass too; before it, one that the gender network reads as the person's gender on most
        samples, if its worst sample clears GENDER_CHOICE_MARGIN. None, or why
        the track gets the fallback: every candidate was still recognizable on one of the
        samples."""
        seed = self.config.seed
        memos: list[dict] = [{} for _ in samples]  # the originals' embeddings, for every candidate
        best, best_key = None, (False, 0.0)
        try:
            for candidate in range(RENDER_CANDIDATES):
                self._use_candidate(seed, candidate)
                worst, kept = np.inf, 0
                for (crop, face, feather), memo in zip(samples, memos):
                    try:
                        margin, written = self._judged(crop, face, feather, track, memo)
                    except Exception:  # noqa: BLE001 - a sample that cannot be drawn counts against
                        margin, written = -1.0, None
                    worst = min(worst, margin)
                    if worst <= 0 or (best_key[0] and worst <= best_key[1]):
                        break  # still recognizable, or no better than the best so far
                    kept += written is not None and self._same_gender(crop, written, face, memo)
                key = (worst >= GENDER_CHOICE_MARGIN and 2 * kept > len(samples), worst)
                if worst > 0 and key > best_key:
                    best, best_key = candidate, key
        finally:
            self._use_candidate(seed, 0)
        if best is None:
            return f"{STILL_RECOGNIZABLE} on a sample frame with each of {RENDER_CANDIDATES} identities tried"
        self._track_candidates[track] = best
        return None

    def _render(self, anonymizer: Anonymizer, crop: np.ndarray, face: Face, rng: np.random.Generator,
                feather: float) -> tuple[np.ndarray, np.ndarray]:
        """The method's pixels for ``crop`` and where they go (a feathered alpha)."""
        cfg = self.config
        result = anonymizer.apply(crop, face, rng)
        if isinstance(result, tuple):
            pixels, mask = result
        else:
            pixels, mask = result, region_mask(face, crop.shape[:2], cfg.region, cfg.mask_scale)
        return pixels, feathered_alpha(mask, feather)

    def _apply(self, anonymizer: Anonymizer, crop: np.ndarray, face: Face, rng: np.random.Generator,
               feather: float) -> np.ndarray:
        return blend(crop, *self._render(anonymizer, crop, face, rng, feather))

    def _faded(self, drawn: np.ndarray, face: Face, rng: np.random.Generator, feather: float,
               weight: float) -> np.ndarray:
        """A video frame next to one its track could not be drawn on: the new face ``drawn``
        faded by ``weight`` towards the fallback, instead of switching in one frame. The
        fallback of the new face, not of the original: a half-and-half mix of a new face and a
        blur of the real one showed the person again (on a crowd pan, SFace margins of 0.11 for
        the new face and 0.11 for the blur fell to 0.04 for the mix), a mix with the new face's
        own blur brings nothing of the original back in. Frames faded are checked as written
        (:meth:`_check_faded_frames`)."""
        if weight <= 0:
            return drawn
        return cv2.addWeighted(drawn, 1 - weight, self._apply(self.fallback, drawn, face, rng, feather), weight, 0)


# A new face the recognizer gate still matches to the person, or that the gender network reads as
# the other gender: methods that offer candidates (`cfa`, `falco`, `swap` without a source) try
# up to this many identities in all, then the fallback (for gender: the first that passed). On
# the second photos of 240 LFW dev pairs (bench/gender_where.py, `cfa`) 8 against 4 kept gender in
# 0.92 of faces against 0.87, and 6 faces got the fallback as still recognizable against 9. A
# video track tries them on CHOICE_FRAMES of its frames and keeps one for all of them.
RENDER_CANDIDATES = 8
STILL_RECOGNIZABLE = "still recognizable"
# A video track chooses among them on this many of its frames, spread over it. With 12 against 6
# (bench/video_eval.py, the three clips) the chosen identity holds on more of the frames between
# the samples: the crowd pan leaked 2 faces against 5 and faded less (identity consistency 0.967
# against 0.949, the same 0.98 on steady frames), but tracks that no candidate carries through
# all 12 get the fallback whole: 21 %, 21 % and 18 % of the lit faces drawn against 29, 21, 24.
CHOICE_FRAMES = 12
# A video shows a face many times and an attacker needs one: its frames are refused (in the plan,
# with fades) when an attacker comes within this of its threshold under any of
# attacker_alignments(). With the run's points alone and no margin, the video yardstick (aligned
# with MTCNN's) knew 3, 6 and 15 new faces of the three test clips that our gate had passed, with
# the margin 1, 2 and 2 (commit c0b5a9b; docs/video.md).
VIDEO_GATE_MARGIN = 0.05
# A track's candidate that keeps the gender is preferred to the one furthest from the attackers
# only if its worst sample frame clears this. At VIDEO_GATE_MARGIN itself, on the crowd pan one
# small face's gender-keeping choice was known to the video yardstick on a frame between its
# samples (6 leaks against 5, bench/video_eval.py); at twice it, the same 5 as without the choice.
GENDER_CHOICE_MARGIN = 2 * VIDEO_GATE_MARGIN


def _frames_at(frames: Iterable[np.ndarray], wanted: dict[int, object]) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) for the frames whose index is in ``wanted``, reading no further than the last."""
    last = max(wanted, default=-1)
    for index, frame in enumerate(frames):
        if index > last:
            break
        if index in wanted:
            yield index, frame


def attacker_alignments(face: Face) -> list[Face]:
    """``face`` as attackers may align it: with the run's 5 points, those of the other detectors
    that found it (:attr:`Face.other_landmarks5`) and those of the 68-point fit. (On small faces
    the run's points scaled by 0.9 and 1.1 and moved by 0.15 eye distances were tried as well:
    on the crowd pan they cut the leak from 0.0059 to 0.0012, but `cfa` then drew 9 % of its
    faces instead of 24 %, and on the dev clip's occluded copy the few drawn frames, mostly
    fades, flickered 1.23 times the original; docs/video.md.)"""
    points = [face.landmarks5] + list(face.other_landmarks5 if face.other_landmarks5 is not None else [])
    if face.landmarks68 is not None:
        points.append(landmarks5_from_68(face.landmarks68))
    return [replace(face, landmarks5=p) for p in points]


def face_rng(seed: int, key: int) -> np.random.Generator:
    """The randomness of one face for one seed: ``key`` is its video track, else its index."""
    return np.random.default_rng([seed & 0xFFFFFFFF, key & 0xFFFFFFFF])


def candidate_seed(seed: int, candidate: int) -> int:
    """The seed of the ``candidate``-th identity tried for a face (0: the run's own)."""
    return seed if candidate == 0 else int(np.random.default_rng([seed & 0xFFFFFFFF, candidate]).integers(2**31))


# A video track is followed through detector misses of up to this long, and covered this long
# before its first and after its last detection.
TRACK_GAP_SECONDS = 0.5
TRACK_PADDING_SECONDS = 0.2


# Frames of a drawn track this close to a frame of it that gets the fallback are faded towards
# the fallback: 1 - d / (FADE_FRAMES + 1) of it at d frames away.
FADE_FRAMES = 3


# A drawn stretch of a track shorter than this, with refused frames on both sides, gets the
# fallback too: it would show a new face for a moment, most of it faded. On the dev clip such
# stretches (a face turning aside and back) made 43 of the 174 drawn frame pairs fades, which
# changed 2.3 times as much as the original from frame to frame; steady drawn frames, 1.06.
MIN_DRAWN_RUN = 2 * FADE_FRAMES + 3
BRIEF_RUN = "drawn too briefly between refused frames"


def _refuse_brief_drawn_runs(plan: list[list[Face]]) -> None:
    """Refuse, per track, the stretches of frames left to draw that are shorter than
    MIN_DRAWN_RUN and have a refused frame (or the cover before or after the track) on both
    sides. A stretch with nothing before or after it in its track (a track that starts or ends
    with the video or at a shot cut, where it has no cover) keeps its frames."""
    by_track: dict[int, list[Face]] = {}
    for faces in plan:
        for face in faces:
            if face.track_id is not None:
                by_track.setdefault(face.track_id, []).append(face)
    for faces in by_track.values():
        # runs alternate between refused and drawn, so a drawn run that is neither the first nor
        # the last has refused frames on both sides
        runs = [list(run) for _, run in itertools.groupby(faces, key=lambda f: bool(f.extra.get("render_refusal")))]
        for run in runs[1:-1]:
            if not run[0].extra.get("render_refusal") and len(run) < MIN_DRAWN_RUN:
                for face in run:
                    face.extra["render_refusal"] = BRIEF_RUN


def _fade_into_refusals(plan: list[list[Face]]) -> None:
    """Mark, per track, the drawn frames near its refused ones with ``extra["fallback_weight"]``
    (the cover before and after a track counts as refused, so every drawn track fades in and out)."""
    refused: dict[int, list[int]] = {}
    for t, faces in enumerate(plan):
        for face in faces:
            if face.track_id is not None and face.extra.get("render_refusal"):
                refused.setdefault(face.track_id, []).append(t)
    for t, faces in enumerate(plan):
        for face in faces:
            frames = refused.get(face.track_id)
            if face.extra.get("render_refusal"):
                face.extra.pop("fallback_weight", None)  # refused since it was faded: whole fallback
                continue
            if not frames:
                continue
            i = bisect.bisect_left(frames, t)  # frames were appended in order
            d = min(abs(t - r) for r in frames[max(0, i - 1) : i + 1])
            if d <= FADE_FRAMES:
                face.extra["fallback_weight"] = 1 - d / (FADE_FRAMES + 1)


# Rounds of checking faded frames (each refusal moves a fade closer); after the last, a faded
# frame not yet checked at its weight is faded all the way (fail closed: it gets the fallback of
# its new face, which holds nothing of the original).
FADE_CHECKS = 3


def _fade_unchecked_fully(plan: list[list[Face]]) -> None:
    for faces in plan:
        for face in faces:
            weight = face.extra.get("fallback_weight", 0.0)
            if weight > 0 and face.extra.get("render_refusal") is None and face.extra.get("checked_weight") != weight:
                face.extra["fallback_weight"] = 1.0


def _track_verdict(detections: Iterable[Face]) -> tuple[str | None, np.ndarray | None]:
    """For a track of a method that paints new faces: why none of it may be drawn on (None: it
    may, frame by frame), and the identity code it keeps (the detections' codes averaged,
    weighted by detector score)."""
    detections = list(detections)
    refused = [f.extra["render_refusal"] for f in detections if f.extra.get("render_refusal")]
    if 2 * len(refused) > len(detections):
        return f"{Counter(refused).most_common(1)[0][0]} (most of its track)", None
    coded = [f for f in detections if "identity_code" in f.extra]
    if not coded:
        return None, None
    w = np.array([max(f.score, 1e-3) for f in coded], np.float64)
    codes = np.stack([f.extra["identity_code"] for f in coded]).astype(np.float64)
    return None, (w[:, None] * codes).sum(0).astype(np.float32) / np.float32(w.sum())


# A face box whose pixels moved by less than this on average (0-255 levels, largest channel
# change) counts as untouched: rounding noise, not anonymization.
MIN_MEAN_CHANGE = 1.0


# A detection lying this much inside the region of a surer one adds nothing to hide.
NESTED = 0.7


def sureness(face: Face) -> float:
    """How sure the detection is of a face: the verifier's probability (ensemble), else its score."""
    return float(face.extra.get("verifier", face.score))


def drop_nested(faces: list[Face], mask_scale: float) -> list[Face]:
    """Faces without those whose box lies >= NESTED inside the anonymized region (the box grown
    by ``mask_scale``) of a surer face (:func:`sureness`). Recall-first
    detectors fire on an eye, a mouth or the hairline of a face they also find whole; blurring
    those over the face's new identity made it change from frame to frame in videos."""
    sure = np.array([sureness(f) for f in faces])
    inside = inside_fraction([f.box for f in faces], [f.box for f in faces], mask_scale) if faces else None
    kept: list[int] = []
    for i in np.argsort(-sure, kind="stable"):
        if not any(sure[k] > sure[i] and inside[i, k] >= NESTED for k in kept):
            kept.append(int(i))
    return [f for i, f in enumerate(faces) if i in kept]


def unchanged(before: np.ndarray, after: np.ndarray, box: np.ndarray) -> bool:
    """True when the pixels inside ``box`` (crop coordinates) barely differ."""
    h, w = before.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return False  # nothing of the face lies in the image
    b, g, r = cv2.split(cv2.absdiff(before[y1:y2, x1:x2], after[y1:y2, x1:x2]))
    return float(cv2.mean(cv2.max(cv2.max(b, g), r))[0]) < MIN_MEAN_CHANGE


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept greyscale, RGB or RGBA uint8 arrays; return RGB uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UsageError(f"images must be uint8 arrays, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise UsageError(f"images must be (H, W), (H, W, 3) or (H, W, 4) arrays, got shape {image.shape}")
