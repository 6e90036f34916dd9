"""Contact sheets: before/after grids written as PNG for people to look at."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .io.atomic import atomic_path


def label(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a caption bar on top."""
    bar_h = max(18, image.shape[0] // 18)
    bar = np.full((bar_h, image.shape[1], 3), 255, np.uint8)
    scale = bar_h / 30
    cv2.putText(bar, text, (4, int(bar_h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(1, int(scale * 2)), cv2.LINE_AA)
    return np.concatenate([bar, image], 0)


def grid(tiles: list[np.ndarray], columns: int, pad: int = 4) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
    return sheet


def save_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(Path(path)) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding failed")
        Path(tmp).write_bytes(buf.tobytes())
