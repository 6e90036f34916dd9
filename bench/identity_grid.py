"""The identity-replacement grid of docs/identity.md: the largest faces of samples/city.jpg (the only
image the repository may carry), each anonymized by the identity engines with several seeds and
angles, whole-image pipeline, faces cut out and enlarged for viewing.

    python bench/identity_grid.py [--image samples/city.jpg] [--out docs/identity_grid.png]
    python bench/identity_grid.py --networks --out docs/networks_grid.png   # the trained networks
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.io import read_image  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402
from faceanon.viz import grid, label, save_png  # noqa: E402

COLUMNS = [  # (caption, method, params, seed)
    ("cfa seed 0", "cfa", {}, 0), ("cfa seed 1", "cfa", {}, 1), ("cfa seed 2", "cfa", {}, 2),
    ("cfa 60 deg", "cfa", {"angle": 60}, 0), ("cfa 180 deg", "cfa", {"angle": 180}, 0),
    ("fit pw A", "fit", {"password": "A"}, 0), ("fit pw B", "fit", {"password": "B"}, 0),
    ("falco", "falco", {}, 0), ("ksame", "ksame", {}, 0), ("swap", "swap", {}, 0),
]
NETWORK_COLUMNS = [  # the small networks trained here, beside the CPU engine they stand next to
    ("ciagan seed 0", "ciagan", {}, 0), ("ciagan seed 1", "ciagan", {}, 1),
    ("fit-net pw A", "fit-net", {"password": "A"}, 0), ("fit-net pw B", "fit-net", {"password": "B"}, 0),
    ("cfa-net 60 deg", "cfa-net", {"angle": 60}, 0), ("cfa-net 90 deg", "cfa-net", {}, 0),
    ("cfa-net 150 deg", "cfa-net", {"angle": 150}, 0), ("cfa (engine)", "cfa", {}, 0),
]


def tile(image: np.ndarray, box: np.ndarray, side: int) -> np.ndarray:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 0.9 * max(box[2] - box[0], box[3] - box[1])
    m = np.float32([[side / (2 * half), 0, side / 2 - cx * side / (2 * half)],
                    [0, side / (2 * half), side / 2 - cy * side / (2 * half)]])
    return cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default=str(REPO / "samples/city.jpg"))
    ap.add_argument("--out", default=str(REPO / "docs/identity_grid.png"))
    ap.add_argument("--faces", type=int, default=5)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--networks", action="store_true", help="columns for ciagan, fit-net and cfa-net")
    args = ap.parse_args()
    columns = NETWORK_COLUMNS if args.networks else COLUMNS
    rgb = read_image(Path(args.image)).rgb
    first = Pipeline(PipelineConfig(method="cfa"))
    faces = first.detect(rgb)
    faces = sorted(faces, key=lambda f: -f.height)
    outputs = []
    for caption, method, params, seed in columns:
        pipe = Pipeline(PipelineConfig(method=method, params=params, seed=seed))
        out, _ = pipe.anonymize(rgb, faces)  # every face of the photo, as a user would run it
        outputs.append((caption, out))
    tiles = []
    for row, face in enumerate(faces[: args.faces]):
        cells = [("original", rgb)] + outputs
        for caption, img in cells:
            t = tile(img, face.box, args.side)
            tiles.append(label(t, caption) if row == 0 else t)
    save_png(Path(args.out), grid(tiles, len(columns) + 1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
