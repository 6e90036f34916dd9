"""Training data of the face space: every shared dev image with its identity and its 68
landmarks (computed once, cached)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...align import Landmarker
from ...detect.base import main_face
from ...io import read_image


@dataclass
class Sample:
    path: Path
    identity: str
    colour: bool


def collect(data_root: Path) -> list[Sample]:
    """CelebA crops (colour) and LFW images (greyscale), identity = folder name."""
    samples = []
    for name, colour in (("celeba_faces", True), ("lfw", False)):
        root = Path(data_root) / name / "images"
        for p in sorted(root.rglob("*.jpg")):
            samples.append(Sample(p, f"{name}:{p.parent.name}", colour))
    return samples


def landmarks(samples: list[Sample], cache: Path, progress: bool = True) -> np.ndarray:
    """(N, 68, 2) landmarks of each sample's main face, NaN where no face was found."""
    cache = Path(cache)
    keys = np.array([f"{s.identity}/{s.path.name}" for s in samples])  # independent of where the data lives
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        if len(data["keys"]) == len(keys) and (data["keys"] == keys).all():
            return data["points"]
    from tqdm import tqdm

    from ...detect import create_detector

    det = create_detector("yunet")
    lm = Landmarker(68)
    out = np.full((len(samples), 68, 2), np.nan, np.float32)
    for i, s in enumerate(tqdm(samples, desc="landmarks", file=sys.stderr, disable=not progress)):
        rgb = read_image(s.path).rgb
        face = main_face(det(rgb), rgb.shape)
        if face is not None:
            lm(rgb, [face])
            out[i] = face.landmarks68
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, keys=keys, points=out)
    return out
