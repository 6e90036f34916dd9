"""What the evaluation needs to know about each *original* image, computed once and cached:
the main face (box + 5 landmarks) and its SFace and dlib embeddings."""
from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..align import Landmarker, landmarks5_from_68
from ..detect import create_detector
from ..detect.base import main_face
from ..io import read_image
from ..io.atomic import atomic_path
from ..models.recognizers import recognizer
from ..types import Face

CACHE_VERSION = 1


@dataclass
class Original:
    face: Face | None
    sface: np.ndarray | None = None
    dlib: np.ndarray | None = None


class OriginalsCache:
    """Lazily computed, pickled per dataset in ``cache_dir``."""

    def __init__(self, images: Path, cache_file: Path | None) -> None:
        self.images = Path(images)
        self.cache_file = cache_file
        self.entries: dict[str, Original] = {}
        if cache_file is not None and Path(cache_file).exists():
            data = pickle.loads(Path(cache_file).read_bytes())
            if data.get("version") == CACHE_VERSION and data.get("images") == str(self.images.resolve()):
                self.entries = data["entries"]
        self._yunet = None
        self._hog = None

    def save(self) -> None:
        if self.cache_file is None:
            return
        blob = pickle.dumps({"version": CACHE_VERSION, "images": str(self.images.resolve()), "entries": self.entries})
        with atomic_path(Path(self.cache_file)) as tmp:
            Path(tmp).write_bytes(blob)

    def find_face(self, rgb: np.ndarray) -> Face | None:
        if self._yunet is None:
            self._yunet = create_detector("yunet")
        face = main_face(self._yunet(rgb), rgb.shape)
        if face is None:
            # Fallback for faces YuNet misses: dlib HOG box, 68 landmarks -> 5 points.
            if self._hog is None:
                self._hog = create_detector("dlib-hog")
            face = main_face(self._hog(rgb), rgb.shape)
            if face is not None:
                Landmarker(68)(rgb, [face])
                face.landmarks5 = landmarks5_from_68(face.landmarks68)
                face.landmarks68 = None
        return face

    def compute(self, rel: str) -> Original:
        rgb = read_image(self.images / rel).rgb
        face = self.find_face(rgb)
        if face is None:
            return Original(face=None)
        return Original(face=face, sface=recognizer("sface").embed(rgb, face), dlib=recognizer("dlib").embed(rgb, face))

    def ensure(self, rels: list[str], progress: bool = True) -> dict[str, Original]:
        todo = [r for r in rels if r not in self.entries]
        if todo:
            from tqdm import tqdm

            bar = tqdm(todo, desc=f"originals of {self.images.parent.name}", unit="img", file=sys.stderr,
                       disable=not progress, leave=False)
            for n, rel in enumerate(bar, 1):
                self.entries[rel] = self.compute(rel)
                if n % 500 == 0:
                    self.save()
            self.save()
        return {r: self.entries[r] for r in rels}
