"""read -> detect -> landmarks/align -> anonymize -> compose -> write, for one image at a time.

:class:`Pipeline` holds the chosen detector and anonymizer and transforms RGB arrays; the
file handling (reading, writing, folders, video) lives in :mod:`faceanon.io` and
:mod:`faceanon.runner`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import Landmarker
from .anonymize import REGION_SHAPES, Anonymizer, create_anonymizer, region_mask, render_gate
from .anonymize.region import region_bounds
from .compose import blend, feathered_alpha
from .detect import DEFAULT_DETECTOR, DETECTORS, create_detector
from .errors import CannotAnonymize, UsageError
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

    @property
    def detector(self):
        if self._detector is None:
            self._detector = create_detector(self.config.detector, **self.config.detector_params)
        return self._detector

    @property
    def needs_landmarks68(self) -> bool:
        return self.anonymizer.needs_landmarks68 or self.config.region == "hull"

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = self.detector(image)
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
        for index, face in enumerate(faces):
            # The same track (video) or index (image) gets the same randomness for one seed.
            key = face.track_id if face.track_id is not None else index
            rng = np.random.default_rng([seed & 0xFFFFFFFF, key & 0xFFFFFFFF])
            self._anonymize_face_inplace(out, face, rng)
        return out, faces

    def _anonymize_face_inplace(self, image: np.ndarray, face: Face, rng: np.random.Generator) -> None:
        """Anonymize one face in place. Fails closed: when the method cannot run on the face,
        raises, or leaves the face box (nearly) unchanged, the fallback filter is applied instead
        and ``face.extra`` says so (``method``, and ``fallback``: the reason)."""
        h, w = image.shape[:2]
        cfg = self.config
        side = max(face.width, face.height, 1.0)
        feather = cfg.feather * side
        bx1, by1, bx2, by2 = region_bounds(face, cfg.region, cfg.mask_scale)
        # Context around the region: filters see real neighbours, the feather has room.
        pad = feather * 2 + 0.15 * side + 2
        x0, y0 = int(max(0, np.floor(bx1 - pad))), int(max(0, np.floor(by1 - pad)))
        x1, y1 = int(min(w, np.ceil(bx2 + pad))), int(min(h, np.ceil(by2 + pad)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            face.extra["method"] = "none"  # the region lies outside the image: nothing to hide
            return
        crop = image[y0:y1, x0:x1].copy()
        local = face.shifted(x0, y0)
        reason = None
        try:
            if self.anonymizer.paints_new_faces:
                # no new face on a non-face, a profile, ...; in a video, once refused, the whole
                # track stays refused (the tracker carries it on): no flipping between frames
                reason = face.extra.get("render_refusal") or render_gate.refusal(crop, local)
                if reason is not None:
                    face.extra["render_refusal"] = reason
            if reason is None:
                out = self._apply(self.anonymizer, crop, local, rng, feather)
                if unchanged(crop, out, local.box):
                    reason = "the method left the face unchanged"
        except CannotAnonymize as e:
            reason = str(e)
        except Exception as e:  # noqa: BLE001 - one face's failure must not leave it visible
            reason = f"{self.anonymizer.name} failed ({type(e).__name__}: {e})"
        if reason is None:
            face.extra["method"] = self.anonymizer.name
        else:
            out = self._apply(self.fallback, crop, local, rng, feather)
            face.extra["method"], face.extra["fallback"] = self.fallback.name, reason
        image[y0:y1, x0:x1] = out

    def _apply(self, anonymizer: Anonymizer, crop: np.ndarray, face: Face, rng: np.random.Generator,
               feather: float) -> np.ndarray:
        cfg = self.config
        result = anonymizer.apply(crop, face, rng)
        if isinstance(result, tuple):
            pixels, mask = result
        else:
            pixels, mask = result, region_mask(face, crop.shape[:2], cfg.region, cfg.mask_scale)
        return blend(crop, pixels, feathered_alpha(mask, feather))


# A face box whose pixels moved by less than this on average (0-255 levels, largest channel
# change) counts as untouched: rounding noise, not anonymization.
MIN_MEAN_CHANGE = 1.0


def unchanged(before: np.ndarray, after: np.ndarray, box: np.ndarray) -> bool:
    """True when the pixels inside ``box`` (crop coordinates) barely differ."""
    h, w = before.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return False  # nothing of the face lies in the image
    diff = np.abs(before[y1:y2, x1:x2].astype(np.int16) - after[y1:y2, x1:x2].astype(np.int16)).max(axis=2)
    return float(diff.mean()) < MIN_MEAN_CHANGE


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
