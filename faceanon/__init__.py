"""faceanon: detect every face, replace or alter its identity, blend it back, and measure it.

Python API::

    import faceanon
    faces = faceanon.detect(rgb)                       # list[faceanon.Face]
    out = faceanon.anonymize(rgb, method="pixelate", blocks=8)
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .anonymize import ANONYMIZERS
from .detect import DETECTORS
from .errors import FaceanonError, InputError, UsageError
from .pipeline import Pipeline, PipelineConfig, as_rgb
from .types import Face

__version__ = "0.1.0"
__all__ = ["anonymize", "detect", "methods", "detectors", "Face", "Pipeline", "PipelineConfig",
           "FaceanonError", "InputError", "UsageError"]


def _frozen(d: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))


@lru_cache(maxsize=8)
def _pipeline(method: str, params: tuple, detector: str, detector_params: tuple, region: str,
              mask_scale: float, seed: int) -> Pipeline:
    return Pipeline(PipelineConfig(method=method, params=dict(params), detector=detector,
                                   detector_params=dict(detector_params), region=region,
                                   mask_scale=mask_scale, seed=seed))


def anonymize(image: np.ndarray, method: str = "blur", *, detector: str = "yunet", detector_params: dict | None = None,
              region: str = "ellipse", mask_scale: float = 1.3, seed: int = 0, faces: list[Face] | None = None,
              **params) -> np.ndarray:
    """Anonymize every face in an RGB (or greyscale) uint8 array; returns a new RGB array.
    ``params`` are the method's parameters (see :func:`methods`)."""
    pipe = _pipeline(method, _frozen(params), detector, _frozen(detector_params or {}), region, mask_scale, seed)
    out, _ = pipe.anonymize(as_rgb(image), faces)
    return out


def detect(image: np.ndarray, detector: str = "yunet", **params) -> list[Face]:
    """Faces in an RGB (or greyscale) uint8 array."""
    pipe = _pipeline("blur", (), detector, _frozen(params), "ellipse", 1.3, 0)
    return pipe.detector(as_rgb(image))


def methods() -> dict[str, dict]:
    """Every registered anonymizer with its parameters (type, default, help)."""
    return {name: _describe(ANONYMIZERS.get(name)) for name in ANONYMIZERS.names()}


def detectors() -> dict[str, dict]:
    return {name: _describe(DETECTORS.get(name)) for name in DETECTORS.names()}


def _describe(cls) -> dict:
    return {
        "summary": getattr(cls, "summary", "") or (cls.__doc__ or "").strip().split("\n")[0],
        "params": {k: {"type": p.type.__name__, "default": p.default, "range": p.range_text, "help": p.help}
                   for k, p in cls.params.items()},
    }
