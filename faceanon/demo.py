"""`faceanon demo`: one image, every classical method, one before/after sheet."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from .io import read_image, write_image
from .pipeline import Pipeline, PipelineConfig
from .viz import grid, label, save_png


def _draw_boxes(rgb: np.ndarray, faces) -> np.ndarray:
    out = rgb.copy()
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 0, 0), 2)
    return out


def _faces_region(shape, faces, margin: float = 0.6) -> tuple[slice, slice]:
    """Where the faces are (plus a margin): the sheet shows that part, large enough to judge."""
    h, w = shape[:2]
    if not faces:
        return slice(0, h), slice(0, w)
    boxes = np.stack([f.box for f in faces])
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    x1, y1 = boxes[:, :2].min(0) - margin * side * 2
    x2, y2 = boxes[:, 2:].max(0) + margin * side * 2
    return slice(max(0, int(y1)), min(h, int(y2))), slice(max(0, int(x1)), min(w, int(x2)))


def run_demo(image_path: Path, out_dir: Path, methods: list[str]) -> None:
    picture = read_image(image_path)
    first = Pipeline(PipelineConfig(method=methods[0]))
    faces = first.detect(picture.rgb)
    rows, cols = _faces_region(picture.rgb.shape, faces)
    tiles = [label(_draw_boxes(picture.rgb, faces)[rows, cols], f"original: {len(faces)} faces ({first.config.detector})")]
    for method in methods:
        pipe = first if method == methods[0] else Pipeline(PipelineConfig(method=method))
        out, _ = pipe.anonymize(picture.rgb, [f for f in faces])
        write_image(out_dir / f"{image_path.stem}_{method}{image_path.suffix}", picture, out)
        tiles.append(label(out[rows, cols], method))
    sheet = grid(tiles, columns=1 if tiles[0].shape[1] > 2 * tiles[0].shape[0] else 2)
    # Keep the sheet a reasonable size for a README.
    if sheet.shape[1] > 1600:
        s = 1600 / sheet.shape[1]
        sheet = cv2.resize(sheet, (1600, int(sheet.shape[0] * s)), interpolation=cv2.INTER_AREA)
    save_png(out_dir / "before_after.png", sheet)
    print(f"faceanon: wrote {out_dir / 'before_after.png'} and {len(methods)} anonymized copies in {out_dir}/",
          file=sys.stderr)
