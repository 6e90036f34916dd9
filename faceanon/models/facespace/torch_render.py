"""The face-space renderer in PyTorch, differentiable in the identity code, so an identity change
can be refined against a differentiable recognizer (models/sface_torch.py).

Same construction as FaceSpace.render: the identity change moves the face points (geometry) and
adds a shape-free texture delta; pixels are resampled with piecewise-affine maps. Triangle
membership of each output pixel is found by rasterizing the current points (not differentiable,
recomputed every call); the barycentric coordinates inside a triangle are differentiable in the
points.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import geometry as geo
from .model import LIGHT_SIGMA_TEX, Encoding, FaceSpace, expression_projection


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    """1-D kernel of the size OpenCV picks for float images (ksize 0)."""
    size = int(round(sigma * 4 * 2 + 1)) | 1
    x = torch.arange(size, dtype=torch.float32) - size // 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """cv2.GaussianBlur(img, (0, 0), sigma) with its default border (reflect-101) for (H, W)."""
    k = _gaussian_kernel(sigma)
    pad = len(k) // 2
    x = F.pad(img[None, None], (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    return F.conv2d(x, k.view(1, 1, -1, 1))[0, 0]


def _barycentric(px: torch.Tensor, tri_pts: torch.Tensor) -> torch.Tensor:
    """Barycentric coordinates (N, 3) of points px (N, 2) in triangles tri_pts (N, 3, 2)."""
    a, b, c = tri_pts[:, 0], tri_pts[:, 1], tri_pts[:, 2]
    v0, v1, v2 = b - a, c - a, px - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = torch.where(den.abs() < 1e-6, torch.full_like(den, 1e-6), den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return torch.stack([1 - l1 - l2, l1, l2], 1)


class TorchFaceRenderer:
    """Renders one face (set up once) for many candidate identity codes."""

    def __init__(self, fs: FaceSpace, image: np.ndarray, enc: Encoding) -> None:
        self.fs = fs
        self.enc = enc
        self.image = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]  # 1,3,H,W
        self.h, self.w = image.shape[:2]
        self.ring = geo.ring_points(enc.points)
        self.src = torch.from_numpy(np.concatenate([enc.points, self.ring]).astype(np.float32))
        inv = cv2.invertAffineTransform(enc.to_canon).astype(np.float32)
        self.inv = torch.from_numpy(inv)
        self.shape0 = torch.from_numpy(enc.shape.reshape(-1, 2).astype(np.float32))
        self.pattern = torch.from_numpy(fs.id_pattern)
        self.keep_expression = torch.from_numpy(expression_projection(len(enc.points)))
        self.shape_pcs = torch.from_numpy(fs.shape_pcs)
        self.tex_pcs = torch.from_numpy(fs.tex_pcs)
        self.tex_mask = torch.from_numpy(fs.tex_mask)
        self.identity0 = torch.from_numpy(enc.identity.astype(np.float32))
        self.tris = torch.from_numpy(fs.triangles.astype(np.int64))
        self.face_tris = torch.from_numpy(fs.face_triangles.astype(np.int64))
        self.mean_shape = torch.from_numpy(fs.mean_shape.astype(np.float32))
        # output window: the ring's bounding box (the ring never moves)
        x0, y0 = np.floor(np.maximum(self.ring.min(0) - 2, 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(self.ring.max(0) + 2, [self.w, self.h])).astype(int)
        self.box = (int(x0), int(y0), int(x1), int(y1))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self.grid_px = torch.from_numpy(np.stack([xs, ys], -1))  # h,w,2 image coords

    def deltas(self, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """FaceSpace.deltas in torch: the same expression restriction and light-band filter."""
        dc = self.pattern @ (identity - self.identity0)
        n = self.fs.n_shape
        d_shape = (self.keep_expression @ ((dc[:n] / self.fs.shape_weight) @ self.shape_pcs)).reshape(-1, 2)
        d_tex = torch.zeros(self.fs.tex * self.fs.tex)
        d_tex = d_tex.masked_scatter(self.tex_mask.reshape(-1), (dc[n:] @ self.tex_pcs) * self.enc.tex_sd)
        d_tex = d_tex.reshape(self.fs.tex, self.fs.tex)
        return d_shape, d_tex - gaussian_blur(d_tex, LIGHT_SIGMA_TEX)

    def _sample(self, img: torch.Tensor, coords: torch.Tensor, size_wh) -> torch.Tensor:
        w, h = size_wh
        gx = coords[..., 0] / (w - 1) * 2 - 1
        gy = coords[..., 1] / (h - 1) * 2 - 1
        return F.grid_sample(img, torch.stack([gx, gy], -1)[None], mode="bilinear", padding_mode="border", align_corners=True)

    def render(self, identity: torch.Tensor) -> torch.Tensor:
        """The whole image (1, 3, H, W), 0-255, with the face given ``identity``."""
        d_shape, d_tex = self.deltas(identity)
        new_canon = self.shape0 + d_shape
        new_pts = new_canon @ self.inv[:, :2].T + self.inv[:, 2]
        dst = torch.cat([new_pts, torch.from_numpy(self.ring)], 0)
        x0, y0, x1, y1 = self.box
        hh, ww = y1 - y0, x1 - x0
        dst_np = dst.detach().numpy()
        ids = torch.from_numpy(geo.triangle_id_map(dst_np, self.fs.triangles, (hh, ww), offset=(x0, y0)).astype(np.int64))
        covered = ids >= 0
        px = self.grid_px[covered]
        t = ids[covered]
        bary = _barycentric(px, dst[self.tris[t]])
        src_px = (bary[:, :, None] * self.src[self.tris[t]]).sum(1)
        coords = self.grid_px.clone()
        coords[covered] = src_px
        warped = self._sample(self.image, coords, (self.w, self.h))  # 1,3,hh,ww
        # texture delta at the new geometry
        fids = torch.from_numpy(geo.triangle_id_map(new_pts.detach().numpy(), self.fs.face_triangles, (hh, ww), offset=(x0, y0)).astype(np.int64))
        fcov = fids >= 0
        fb = _barycentric(self.grid_px[fcov], new_pts[self.face_tris[fids[fcov]]])
        canon = (fb[:, :, None] * self.mean_shape[self.face_tris[fids[fcov]]]).sum(1) * (self.fs.tex / self.fs.canon)
        tex_vals = self._sample(d_tex[None, None], canon[None], (self.fs.tex, self.fs.tex))[0, 0, 0]
        delta = torch.zeros(hh, ww)
        delta[fcov] = tex_vals
        fade = cv2.GaussianBlur(cv2.erode(fcov.numpy().astype(np.float32), np.ones((5, 5), np.uint8)), (0, 0), max(2.0, hh / 40))
        region = (warped[0] + delta[None] * torch.from_numpy(fade)[None]).clamp(0, 255)
        out = self.image.clone()
        keep = covered[None].expand(3, -1, -1)
        out[0, :, y0:y1, x0:x1] = torch.where(keep, region, self.image[0, :, y0:y1, x0:x1])
        return out
