"""The anonymizer interface."""
from __future__ import annotations

import numpy as np

from ..registry import Param, Registry
from ..types import Face

ANONYMIZERS: Registry["Anonymizer"] = Registry("method")


class Anonymizer:
    """Turns the face in an RGB crop into an anonymized crop of the same size.

    The pipeline cuts a crop around each face (the region plus some context), calls
    :meth:`apply` with the face in crop coordinates and a per-face random generator, and the
    compose stage blends the result back through the region mask. An engine that knows better
    where its new face lies may return ``(pixels, mask)`` with its own float mask in [0, 1].
    """

    name = "base"
    params: dict[str, Param] = {}
    # Set by methods that need dlib's 68 landmarks on every face (the pipeline adds them).
    needs_landmarks68 = False
    # Set by methods that need the 5 points (eyes, nose, mouth corners); box-only detectors'
    # faces get them from the 68-point landmarker.
    needs_landmarks5 = False
    # Set by methods that paint a new face (identity engines, the papers' networks): the
    # pipeline lets them only where anonymize/render_gate.py allows, the fallback elsewhere.
    paints_new_faces = False
    summary = ""
    # (parameter, values from weak to strong) swept by the controllability curve; None = no knob.
    strength: tuple[str, list] | None = None
    # The run's --seed, set by the pipeline: methods whose result must be the same for the same
    # person across photos derive it from the seed (not from the per-face generator).
    seed: int = 0
    # Set by methods that can draw more than one new identity for a face: where the recognizer
    # gate still knows the person, or the gender network reads the other gender, the pipeline
    # tries others before the fallback. It sets ``candidate`` (0: the method's first choice) and
    # gives each its own ``seed``.
    offers_candidates = False
    candidate: int = 0
    # Methods whose image outputs normally carry a recovery payload (fit): for them a file
    # without one is worth a warning when deanonymizing.
    writes_payload = False
    # Methods built on PyTorch (the optional extra `faceanon[torch]`).
    needs_torch = False

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The anonymized crop (or ``(pixels, mask)``). A method that cannot run on this face
        raises :class:`~faceanon.errors.CannotAnonymize`: the pipeline applies its fallback."""
        raise NotImplementedError

    def identity_code(self, crop: np.ndarray, face: Face) -> np.ndarray | None:
        """For methods whose new face is a function of the face's identity: that identity, as a
        vector. In a video the pipeline averages it over each track and hands it back in
        ``face.extra["track_identity"]``, so one person keeps one new identity through the
        clip instead of one that drifts with every frame's pose and light. None: not used."""
        return None

    def recovery_payload(self, original: np.ndarray, anonymized: np.ndarray) -> bytes | None:
        """Bytes to append to an image output so the original can be restored (reversible
        methods only; see io/payload.py)."""
        return None

    def describe(self) -> dict:
        return {k: getattr(self, k, None) for k in self.params}
