"""Adversarial baselines (issue 5): pixel perturbations inside the face region that push the
differentiable SFace (models/sface_torch.py) away from the original identity, while people see
the same face. Honest judging: these methods optimize against SFace, so dlib is their privacy
judge."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..align import ARCFACE_TEMPLATE_112, similarity_transform
from ..errors import CannotAnonymize
from ..registry import Param
from ..types import Face
from .base import ANONYMIZERS, Anonymizer
from .region import region_mask


@lru_cache(maxsize=1)
def _sface():
    from ..models.sface_torch import build_sface

    # Only gradients with respect to the input are needed: no weight gradients (3-5x faster).
    return build_sface().requires_grad_(False)


def _aligned_sampler(face: Face, shape: tuple[int, int]):
    """A function mapping a (1, 3, H, W) image tensor to its 112 px ArcFace-aligned crop,
    differentiable in the image."""
    import torch
    import torch.nn.functional as F

    m = similarity_transform(face.landmarks5, ARCFACE_TEMPLATE_112).astype(np.float64)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:112, 0:112].astype(np.float64)
    src_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    src_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    h, w = shape
    grid = torch.from_numpy(np.stack([src_x / (w - 1) * 2 - 1, src_y / (h - 1) * 2 - 1], -1).astype(np.float32))[None]
    return lambda x: F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class _PixelAttack(Anonymizer):
    """Signed-gradient steps on the cosine similarity to the original embedding, restricted to
    the face region and to an L-infinity ball of radius ``epsilon`` (in 0-1 intensity units)."""

    needs_torch = True

    steps = 1

    def _attack(self, crop: np.ndarray, face: Face, epsilon: float, steps: int, step: float) -> tuple[np.ndarray, np.ndarray]:
        import torch

        if face.landmarks5 is None:
            raise CannotAnonymize("no landmarks")
        net = _sface()
        sample = _aligned_sampler(face, crop.shape[:2])
        x0 = torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None]
        mask_np = region_mask(face, crop.shape[:2], "ellipse", 1.1)
        mask = torch.from_numpy(mask_np)[None, None]
        with torch.no_grad():
            e0 = net(sample(x0))[0]
            e0 = e0 / e0.norm()
        eps, alpha = epsilon * 255.0, step * 255.0
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            e = net(sample(x))[0]
            sim = (e / e.norm()) @ e0
            (grad,) = torch.autograd.grad(sim, x)
            with torch.no_grad():
                x = x - alpha * grad.sign() * mask
                x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 255)
        out = x.detach()[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8)
        return out, mask_np


@ANONYMIZERS.register("fgsm")
class FGSM(_PixelAttack):
    summary = "one signed-gradient step against SFace inside the face (Goodfellow et al.); judge with dlib"
    needs_landmarks5 = True
    strength = ("epsilon", [0.01, 0.02, 0.03, 0.05, 0.1])
    params = {"epsilon": Param(float, 0.03, "perturbation size in 0-1 intensity units (0.03 = 7.7 / 255)", low=0.004, high=1)}

    def __init__(self, epsilon: float = 0.03) -> None:
        self.epsilon = epsilon

    def apply(self, crop, face, rng):
        return self._attack(crop, face, self.epsilon, 1, self.epsilon)


@ANONYMIZERS.register("pgd")
class PGD(_PixelAttack):
    summary = "projected gradient descent against SFace inside the face (Madry et al.); judge with dlib"
    needs_landmarks5 = True
    strength = ("epsilon", [0.01, 0.02, 0.03, 0.05, 0.1])
    params = {
        "epsilon": Param(float, 0.03, "L-infinity bound in 0-1 intensity units", low=0.004, high=1),
        "steps": Param(int, 10, "iterations", low=1, high=1000),
        "step": Param(float, 0.0, "step size in 0-1 units; 0 = 2.5 * epsilon / steps", low=0, high=1),
    }

    def __init__(self, epsilon: float = 0.03, steps: int = 10, step: float = 0.0) -> None:
        self.epsilon, self.steps, self.step = epsilon, steps, step

    def apply(self, crop, face, rng):
        step = self.step if self.step > 0 else 2.5 * self.epsilon / max(1, self.steps)
        return self._attack(crop, face, self.epsilon, self.steps, step)


@ANONYMIZERS.register("adversarial")
class StructuredAdversarial(Anonymizer):
    """The systematic De-ID paper's adversarial de-identification, adapted: the perturbation is
    not free pixel noise but a low-dimensional code, the face space's 200 shape-free texture
    components (smooth, face-shaped patterns), each clipped to ``delta`` of its natural standard
    deviation, drawn at the face's own geometry. Landmarks are held exactly (no geometry
    change), light is kept (the change's lowest band is removed, as in the identity engines).
    Signed-gradient steps against the differentiable SFace: dlib is the judge."""

    needs_torch = True

    summary = "structured adversarial De-ID: face-space texture code pushed against SFace, geometry held; judge with dlib"
    needs_landmarks68 = True
    strength = ("delta", [0.1, 0.25, 0.5, 1.0, 1.15, 1.5, 2.0])
    params = {
        "delta": Param(float, 1.15, "largest change of each texture component, in its standard deviations", low=0.05, high=10),
        "steps": Param(int, 10, "signed-gradient steps", low=1, high=1000),
    }

    def __init__(self, delta: float = 1.15, steps: int = 10) -> None:
        self.delta, self.steps = delta, steps

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator):
        import cv2
        import torch
        import torch.nn.functional as F

        from ..models.facespace import geometry as geo
        from ..models.facespace.model import LIGHT_SIGMA_TEX, face_space
        from ..models.facespace.torch_render import gaussian_blur

        if face.landmarks5 is None or face.landmarks68 is None:
            raise CannotAnonymize("no landmarks")
        fs = face_space()
        enc = fs.encode(crop, face.landmarks68)
        h, w = crop.shape[:2]
        # Where each crop pixel lies in the texture frame (fixed: the geometry does not move).
        t = fs.tex
        uv = np.stack(np.meshgrid(np.arange(t, dtype=np.float32), np.arange(t, dtype=np.float32)), -1)
        coords, cover = geo.warp(uv, fs.tex_pts, enc.points, fs.face_triangles, (h, w))
        r = max(2, int(round(max(face.width, face.height) * 0.03)))
        fade = cv2.GaussianBlur(cv2.erode(cover, np.ones((2 * r + 1, 2 * r + 1), np.uint8)), (0, 0), r)
        grid = torch.from_numpy(np.stack([coords[..., 0] / (t - 1) * 2 - 1, coords[..., 1] / (t - 1) * 2 - 1], -1))[None]
        fade_t = torch.from_numpy(fade)[None, None]
        pcs = torch.from_numpy(fs.tex_pcs)
        mask = torch.from_numpy(fs.tex_mask.reshape(-1))
        bound = torch.from_numpy((self.delta * np.sqrt(fs.tex_var)).astype(np.float32))

        def delta_image(a: torch.Tensor) -> torch.Tensor:
            tex = torch.zeros(t * t).masked_scatter(mask, (a @ pcs) * enc.tex_sd).reshape(t, t)
            tex = tex - gaussian_blur(tex, LIGHT_SIGMA_TEX)
            return F.grid_sample(tex[None, None], grid, mode="bilinear", align_corners=True) * fade_t

        net = _sface()
        sample = _aligned_sampler(face, (h, w))
        x0 = torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            e0 = net(sample(x0))[0]
            e0 = e0 / e0.norm()
        a = torch.from_numpy((rng.uniform(-0.05, 0.05, len(bound)) * bound.numpy()).astype(np.float32))
        step = 2.5 / max(1, self.steps) * bound
        for _ in range(self.steps):
            a.requires_grad_(True)
            e = net(sample((x0 + delta_image(a)).clamp(0, 255)))[0]
            sim = (e / e.norm()) @ e0
            (grad,) = torch.autograd.grad(sim, a)
            with torch.no_grad():
                a = torch.max(torch.min(a - step * grad.sign(), bound), -bound)
        with torch.no_grad():
            out = (x0 + delta_image(a)).clamp(0, 255)[0].permute(1, 2, 0).round().numpy().astype(np.uint8)
        return out, np.ones((h, w), np.float32)  # outside the face the crop is unchanged
