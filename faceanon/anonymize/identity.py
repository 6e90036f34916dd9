"""Identity replacement in the project's face space (models/facespace): only the identity
code moves; pose, expression, light, skin detail, accessories and background stay, because
the change is applied to the real pixels as a geometry warp plus a texture delta."""
from __future__ import annotations

import numpy as np

from ..models.facespace.model import composite_bank, face_space, render_identity
from ..registry import Param
from ..types import Face
from .base import ANONYMIZERS, Anonymizer


def seeded_rotation(seed: int, dims: int) -> np.ndarray:
    """A random orthogonal matrix fixed by the seed: maps a person's identity direction to a
    new direction, the same for the same person in every photo or frame."""
    rng = np.random.default_rng([0xCFA, seed & 0xFFFFFFFF])
    q, r = np.linalg.qr(rng.normal(size=(dims, dims)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def rotate_on_sphere(code: np.ndarray, angle_deg: float, rotation: np.ndarray, radius: float) -> np.ndarray:
    """CFA-Net's anonymization (their eq. 10) in our identity space: the normalised identity u is
    turned by ``angle`` towards a direction v orthogonal to it, at radius ``radius``."""
    u = code / max(float(np.linalg.norm(code)), 1e-8)
    v = rotation @ u
    v = v - (v @ u) * u
    v = v / max(float(np.linalg.norm(v)), 1e-8)
    t = np.deg2rad(angle_deg)
    return radius * (np.cos(t) * u + np.sin(t) * v)


@ANONYMIZERS.register("cfa")
class CFA(Anonymizer):
    summary = "identity code turned by an angle on the hypersphere (CFA-Net), rendered on the real face"
    needs_landmarks68 = True
    strength = ("angle", [0, 15, 30, 45, 60, 90, 120, 150, 180])
    params = {
        "angle": Param(float, 120.0, "angle in degrees between the old and new identity (0 = unchanged)"),
        "radius": Param(float, 1.0, "new identity norm relative to max(own norm, typical norm)"),
    }

    def __init__(self, angle: float = 120.0, radius: float = 1.0) -> None:
        self.angle, self.radius = angle, radius

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator):
        fs = face_space()
        enc = fs.encode(crop, face.landmarks68)
        own = float(np.linalg.norm(enc.identity))
        # Faces near the average identity would barely move; give them the typical radius.
        radius = self.radius * max(own, fs.id_norm_median)
        new = rotate_on_sphere(enc.identity, self.angle, seeded_rotation(self.seed, fs.id_dims), radius)
        d_shape, d_tex = fs.deltas(enc, new)
        # Fine detail (what SFace-like recognizers read) comes from the synthetic identity nearest
        # to the new code, by an amount that grows with the angle: 1 - cos(angle), capped at 1.
        bank = composite_bank()
        amount = float(np.clip(1 - np.cos(np.deg2rad(self.angle)), 0, 1))
        detail = bank.detail(bank.nearest(new)) if amount > 0 else None
        region, alpha, (x0, y0, x1, y1) = render_identity(fs, crop, enc, d_shape, d_tex, detail, amount)
        pixels = crop.copy()
        pixels[y0:y1, x0:x1] = region
        mask = np.zeros(crop.shape[:2], np.float32)
        mask[y0:y1, x0:x1] = alpha
        return pixels, mask
