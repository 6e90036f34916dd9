"""FIT: password-conditioned, reversible identity replacement in the face space.

The password fixes a rotation of the identity space that turns *every* identity code by the
same angle (an isoclinic rotation exp(angle * J), J a password-derived complex structure:
J^2 = -I). Anonymizing applies it, deanonymizing applies its inverse; a wrong password applies
someone else's inverse, which lands on another code of the same norm, so every password gives a
face in the model's normal range and the pixels alone do not tell which password was right.

Recovery has two levels:
- image only: the inverse rotation brings the identity code back, rendered with the synthetic
  detail nearest to it (the person's own fine detail was replaced, so this is approximate);
- exact: the original pixels of the changed regions, AES-GCM encrypted under the password and
  appended to the output file (io/payload.py). A password that opens the payload is confirmed
  by it, which is why it is optional (``payload=false``) for files where deniability matters
  more than exact recovery.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from ..errors import UsageError
from ..io.payload import changed_regions, seal
from ..models.facespace.model import Encoding, FaceSpace, attribute_probe, composite_bank
from ..registry import Param
from .base import ANONYMIZERS
from .identity import IdentityReplacer, Target

_SALT = b"faceanon-fit-identity-v1"  # fixed: the same password must give the same new identity everywhere


@lru_cache(maxsize=16)
def password_structure(password: str, dims: int) -> np.ndarray:
    """J with J^T = -J and J^2 = -I, derived from the password by scrypt (slow on purpose)."""
    key = hashlib.scrypt(password.encode("utf-8"), salt=_SALT, n=2**14, r=8, p=1, dklen=32)
    rng = np.random.default_rng(np.frombuffer(key, np.uint32))
    q, r = np.linalg.qr(rng.normal(size=(dims, dims)))
    q = q * np.sign(np.diag(r))
    block = np.zeros((dims, dims))
    for i in range(0, dims - 1, 2):
        block[i, i + 1], block[i + 1, i] = -1.0, 1.0
    return (q @ block @ q.T).astype(np.float32)


def keyed_turn(code: np.ndarray, password: str, angle_deg: float, keep: np.ndarray | None = None) -> np.ndarray:
    """exp(angle J) code: the code turned by exactly ``angle`` (negative = the inverse). With
    ``keep`` (d, k), orthonormal columns, the code's part along them stays and only the rest is
    turned, by exactly ``angle`` (J acts on the rest alone; :func:`turned_basis`)."""
    t = np.deg2rad(angle_deg)
    if keep is None:
        j = password_structure(password, len(code))
        return (np.cos(t) * code + np.sin(t) * (j @ code)).astype(np.float32)
    basis = turned_basis(keep)
    rest = basis.T @ code
    j = password_structure(password, basis.shape[1])
    return (code + basis @ ((np.cos(t) - 1) * rest + np.sin(t) * (j @ rest))).astype(np.float32)


def turned_basis(keep: np.ndarray) -> np.ndarray:
    """An orthonormal basis (d, even) of the directions outside ``keep``: the completion of
    ``keep``'s QR (Householder: the same basis on every machine). An odd count drops its last
    direction, which then stays with ``keep``: J needs an even count to square to -I."""
    d, k = keep.shape
    basis = np.linalg.qr(keep.astype(np.float64), mode="complete")[0][:, k:]
    return basis[:, : (d - k) // 2 * 2]


@ANONYMIZERS.register("fit")
class FIT(IdentityReplacer):
    summary = "password-conditioned reversible replacement (FIT): `faceanon deanonymize --password` restores"
    strength = ("angle", [30, 60, 90, 120, 150, 180])  # no 0: an unchanged face gets the fallback blur
    params = {
        "password": Param(str, "", "the password (also --password); required"),
        "angle": Param(float, 120.0, "angle in degrees every identity code is turned by", low=0, high=180),
        "payload": Param(bool, True, "append the encrypted original regions to image outputs, for exact recovery"),
        "keep_attributes": Param(bool, False, "leave the part of the identity gender and age are read from unturned (keeps gender far more often, protects less; give it to deanonymize too)"),
    }

    writes_payload = True

    def __init__(self, password: str = "", angle: float = 120.0, payload: bool = True,
                 keep_attributes: bool = False) -> None:
        if not password:
            raise UsageError("method fit needs a password: --password P (or --param password=P)")
        self.password, self.angle, self.payload, self.keep_attributes = password, angle, payload, keep_attributes
        # Set by `faceanon deanonymize`: turn the other way.
        self.inverse = False

    def kept_subspace(self) -> np.ndarray | None:
        """With ``keep_attributes``, the directions the turn leaves alone, as `cfa`'s: the subspace
        gender and age are read from. Not by default: on 500 LFW dev pairs it kept the gender
        0.83 of the time instead of 0.56, but SFace re-identified 0.026 instead of 0.012, over
        the 0.02 the default must meet; and `fit` cannot, like `cfa`, turn further to make up for
        it, since a wrong password then lands nearer the original (docs/identity.md)."""
        return attribute_probe().kept if self.keep_attributes else None

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        new = keyed_turn(enc.identity, self.password, -self.angle if self.inverse else self.angle, self.kept_subspace())
        bank = composite_bank()
        return Target(new, bank.detail(bank.nearest(new, bank.same_gender(enc))))

    def recovery_payload(self, original: np.ndarray, anonymized: np.ndarray) -> bytes | None:
        if not self.payload or self.inverse:
            return None
        return seal(changed_regions(original, anonymized), self.password, original.shape[:2])
