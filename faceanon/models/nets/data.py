"""Training data for the networks: aligned face crops from identity folders
(<root>/<identity>/<image>), with dlib's 68 landmarks in crop coordinates and identity labels.

Crops are aligned by a similarity transform from the face's 5 points to the ArcFace template
zoomed out so the crop also holds hair and some background (CIAGAN replaces the face inside a
background it must match). Landmarks and crops are computed once and cached."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from ...align import ARCFACE_TEMPLATE_112, landmarks5_from_68, similarity_transform
from ...io import read_image
from ..facespace.data import Sample, landmarks

ZOOM = 0.62  # the template's span relative to the crop: < 1 leaves room around the face


def crop_template(size: int) -> np.ndarray:
    """Where the 5 points go in a ``size`` crop."""
    t = ARCFACE_TEMPLATE_112 / 112.0
    centre = np.array([0.5, 0.52], np.float32)
    return ((t - centre) * ZOOM + np.array([0.5, 0.55], np.float32)) * size


def alignment(points5: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix taking image coordinates to the crop."""
    return similarity_transform(points5, crop_template(size))


def identity_samples(roots: list[Path]) -> list[Sample]:
    samples = []
    for root in roots:
        root = Path(root)
        for p in sorted(root.rglob("*.jpg")) + sorted(root.rglob("*.png")):
            samples.append(Sample(p, f"{root.name}:{p.parent.name}", True))
    return samples


class FaceCrops:
    """All usable faces under ``roots`` as uint8 crops (N, S, S, 3), landmarks (N, 68, 2) and
    labels (N,) indexing ``identities``."""

    def __init__(self, roots: list[Path], size: int, cache: Path = Path(".cache/nets"), progress: bool = True) -> None:
        roots = [Path(r) for r in roots]
        cache = Path(cache)
        key = hashlib.sha1(("|".join(str(r.resolve()) for r in roots)).encode()).hexdigest()[:12]
        crops_file = cache / f"crops_{key}_{size}.npz"
        if crops_file.exists():
            d = np.load(crops_file)
            self.images, self.points, self.labels = d["images"], d["points"], d["labels"]
            self.identities = list(d["identities"])
            return
        samples = identity_samples(roots)
        if not samples:
            raise ValueError(f"no .jpg/.png images under {', '.join(map(str, roots))}")
        pts = landmarks(samples, cache / f"landmarks_{key}.npz", progress)
        images, points, names = [], [], []
        for s, p in zip(samples, pts):
            if np.isnan(p[0, 0]):
                continue
            m = alignment(landmarks5_from_68(p), size)
            rgb = read_image(s.path).rgb
            images.append(cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
            points.append(p @ m[:, :2].T + m[:, 2])
            names.append(s.identity)
        self.identities = sorted(set(names))
        index = {n: i for i, n in enumerate(self.identities)}
        self.images = np.stack(images)
        self.points = np.stack(points).astype(np.float32)
        self.labels = np.array([index[n] for n in names], np.int64)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(crops_file, images=self.images, points=self.points, labels=self.labels,
                 identities=np.array(self.identities))
        print(f"{len(self.images)} faces of {len(self.identities)} people cached in {crops_file}", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def tensor(self, idx: np.ndarray) -> torch.Tensor:
        """Images as float (B, 3, S, S) in [0, 1], with random horizontal flips off (landmarks
        would have to be mirrored too)."""
        # contiguous: channels-last views crash double backward (R1) in torch 2.13 on CPU
        return torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2).contiguous().float() / 255.0

    def same_identity(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each label, a random image index of that identity."""
        out = np.empty(len(labels), np.int64)
        for i, lab in enumerate(labels):
            members = np.flatnonzero(self.labels == lab)
            out[i] = rng.choice(members)
        return out
