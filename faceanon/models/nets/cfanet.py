"""CFA-Net (Ma et al., 2021): controllable face anonymization by turning an identity code on a
hypersphere.

The paper describes: an encoder with a shared trunk and two branches, *content* (spatial) and
*identity* (a vector projected onto the unit sphere); a decoder with weight-demodulated
convolutions that receives the identity code; a global discriminator D and a local one on
random patches of 1/8-1/4 of the image; content, identity-consistency, identity-smoothing
(slerp, eps = 1e-4, lambda = 10), adversarial and reconstruction losses; anonymization by taking
the code at angle theta from the face's own (their eq. 10). No code was published, so the
layers follow the design it names (the Swapping Autoencoder's StyleGAN2 encoder/decoder, whose
structure/texture codes are CFA-Net's content/identity codes):

- encoder: 1x1 from-RGB, residual blocks halving the resolution (channels up to 512 at width
  1) to an 8 x 8 trunk (4 blocks at 128 px); content = 1x1 convs to 8 channels, unit-normalised
  per pixel; identity = two stride-2 convs (1024, 2048), global mean, a linear layer, batch
  centring, unit sphere;
- decoder: content modulated by the code (affine per channel), 2 residual StyledConv blocks at
  8 x 8, upsampling residual StyledConv blocks to S x S, a modulated 1x1 to-RGB;
- D: residual downsampling, minibatch standard deviation, linear; D_local the same on patches.

Identity supervision (``classes`` > 0, what `faceanon train cfa` uses): without it nothing makes
the identity code carry identity - a constant code satisfies identity consistency and smoothing
exactly, and the content code alone reconstructs the face (our first CPU run collapsed that
way: identity loss 0.0 from the first steps). The paper leans on a pretrained recognizer for
this; we add a cosine-margin classifier (CosFace, s 16, m 0.2) over the training identities on
the code, so codes of one person cluster and codes of different people separate on the sphere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import EqualLinear, ModulatedConv, StyledConv, ch

SQRT2 = math.sqrt(2)


class _ResDown(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2)
        return (h + self.skip(x)) / SQRT2


def unit(v: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return v * torch.rsqrt(v.pow(2).sum(dim, keepdim=True) + 1e-8)


def _halvings(size: int) -> int:
    """Resolution steps between the image and the 8 x 8 content code."""
    n = int(math.log2(size)) - 3
    if size != 8 * 2**n or n < 1:
        raise ValueError(f"CFA-Net needs a power-of-two size >= 16, not {size}")
    return n


class Encoder(nn.Module):
    def __init__(self, width: float = 1.0, content_ch: int = 8, id_dim: int | None = None, size: int = 128) -> None:
        super().__init__()
        # the content code is 8 x 8 (S/16 at 128 px); at 64 px a 4 x 4 code (S/16) left our
        # CPU model only blurred blobs to reconstruct from, so small models keep 8 x 8 too
        c = [ch(n, width) for n in (32, 64, 128, 256, 512)][-(_halvings(size) + 1):]
        self.id_dim = id_dim or ch(2048, width)
        self.trunk = nn.Sequential(nn.Conv2d(3, c[0], 1), nn.LeakyReLU(0.2),
                                   *[_ResDown(a, b) for a, b in zip(c[:-1], c[1:])])
        self.content = nn.Sequential(nn.Conv2d(c[-1], c[-1], 1), nn.LeakyReLU(0.2), nn.Conv2d(c[-1], content_ch, 1))
        self.identity = nn.Sequential(nn.Conv2d(c[-1], ch(1024, width), 3, 2, 1), nn.LeakyReLU(0.2),
                                      nn.Conv2d(ch(1024, width), ch(2048, width), 3, 2, 1), nn.LeakyReLU(0.2))
        self.identity_fc = EqualLinear(ch(2048, width), self.id_dim)
        # centring before the sphere (as ArcFace's embedding head does with BatchNorm): a fresh
        # trunk's pooled features are nearly the same vector for every face (cosine 0.997), a
        # start from which no identity loss could spread the codes
        self.identity_norm = nn.BatchNorm1d(self.id_dim, affine=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [-1, 1] -> (content (B, 8, 8, 8) unit per pixel, identity (B, d) unit)."""
        h = self.trunk(x)
        content = unit(self.content(h), 1)
        identity = unit(self.identity_norm(self.identity_fc(self.identity(h).mean((2, 3)))), 1)
        return content, identity


class _StyledBlock(nn.Module):
    def __init__(self, cin: int, cout: int, style: int, upsample: bool) -> None:
        super().__init__()
        self.conv1 = StyledConv(cin, cout, style, upsample=upsample)
        self.conv2 = StyledConv(cout, cout, style)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.upsample = upsample

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x)
        if self.upsample:
            skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
        return (self.conv2(self.conv1(x, z), z) + skip) / SQRT2


class Decoder(nn.Module):
    def __init__(self, width: float = 1.0, content_ch: int = 8, id_dim: int | None = None, size: int = 128) -> None:
        super().__init__()
        d = id_dim or ch(2048, width)
        self.mod_scale = EqualLinear(d, content_ch, bias_init=1.0)
        self.mod_bias = EqualLinear(d, content_ch)
        c = [ch(n, width) for n in [256, 512] + [512, 512, 256, 128][-_halvings(size):]]
        self.head = nn.ModuleList([_StyledBlock(content_ch, c[0], d, False), _StyledBlock(c[0], c[1], d, False)])
        self.ups = nn.ModuleList([_StyledBlock(a, b, d, True) for a, b in zip(c[1:-1], c[2:])])
        self.to_rgb = ModulatedConv(c[-1], 3, 1, d, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, content: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        z = unit(identity, 1)
        x = unit(content, 1) * self.mod_scale(z)[:, :, None, None] + self.mod_bias(z)[:, :, None, None]
        for block in list(self.head) + list(self.ups):
            x = block(x, z)
        return self.to_rgb(x, z) + self.rgb_bias


class Critic(nn.Module):
    """Residual downsampling to 4 x 4, minibatch standard deviation, linear -> 1 logit."""

    def __init__(self, size: int, width: float = 1.0) -> None:
        super().__init__()
        n = int(math.log2(size)) - 2
        chans = [ch(min(512, 32 * 2**i), width) for i in range(n + 1)]
        self.from_rgb = nn.Sequential(nn.Conv2d(3, chans[0], 1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[_ResDown(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.final = nn.Sequential(nn.Conv2d(chans[-1] + 1, chans[-1], 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                                   nn.Linear(chans[-1] * 16, chans[-1]), nn.LeakyReLU(0.2), nn.Linear(chans[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))
        std = h.std(0, unbiased=False).mean().expand(h.shape[0], 1, *h.shape[2:])
        return self.final(torch.cat([h, std], 1))


def random_patches(x: torch.Tensor, n: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` random crops per image, each side U(1/8, 1/4) of the image side, resampled to
    ``size`` (D_local's input)."""
    b = x.shape[0]
    scale = 0.125 + 0.125 * torch.rand(b * n, 2, generator=generator)  # fraction of the side, per axis
    centre = (torch.rand(b * n, 2, generator=generator) * 2 - 1) * (1 - scale)
    theta = torch.zeros(b * n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale[:, 0], scale[:, 1]
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, (b * n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x.repeat_interleave(n, 0), grid, align_corners=False)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation between unit vectors (rows), t in [0, 1] per row."""
    d = (a * b).sum(1, keepdim=True).clamp(-1, 1)
    p = t[:, None] * torch.acos(d * (1 - eps))
    u = unit(b - d * a, 1)
    return unit(a * torch.cos(p) + u * torch.sin(p), 1)


def at_angle(z: torch.Tensor, theta_deg: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 10: a unit code at exactly ``theta`` from z, towards a random tangent direction."""
    r = torch.randn(z.shape, generator=generator)
    u = unit(r - (r * z).sum(1, keepdim=True) * z, 1)
    t = math.radians(theta_deg)
    return math.cos(t) * z + math.sin(t) * u


def _low_pass(x: torch.Tensor, noise: float = 0.05) -> torch.Tensor:
    """What the encoder sees when it re-reads a generated image (consistency and smoothing
    losses): 2x box blur plus noise. Re-read at full resolution, the CPU model learned to hide
    the identity code in a pixel-level speckle the encoder could read back (a generator and its
    own judge agreeing on a private signal); a face's identity survives the blur, speckle does not."""
    blurred = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    return blurred + noise * torch.randn_like(x)


class CFANet(nn.Module):
    def __init__(self, img_size: int = 64, width: float = 0.25, lr: float = 2e-3, patch: int = 32,
                 smoothing: float = 10.0, adversarial: float = 1.0, classes: int = 0, warmup: int = 0,
                 reconstruction: float = 1.0) -> None:
        super().__init__()
        self.config = {"img_size": img_size, "width": width, "lr": lr, "patch": patch, "smoothing": smoothing,
                       "adversarial": adversarial, "classes": classes, "warmup": warmup,
                       "reconstruction": reconstruction}
        self.E = Encoder(width, size=img_size)
        self.G = Decoder(width, id_dim=self.E.id_dim, size=img_size)
        self.D = Critic(img_size, width)
        self.D_local = Critic(patch, width)
        # training-only: one unit vector per training identity (see the module docstring)
        self.id_centres = nn.Parameter(torch.randn(classes, self.E.id_dim)) if classes > 0 else None
        extra = [self.id_centres] if classes > 0 else []
        self.opt_g = torch.optim.Adam(list(self.E.parameters()) + list(self.G.parameters()) + extra, lr,
                                      betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(list(self.D.parameters()) + list(self.D_local.parameters()), lr, betas=(0.0, 0.99))
        self.steps = 0

    def anonymize(self, x: torch.Tensor, theta: float, generator: torch.Generator | None = None) -> torch.Tensor:
        content, z = self.E(x)
        return self.G(content, at_angle(z, theta, generator))

    def train_step(self, batch: dict) -> dict:
        x = batch["image"] * 2 - 1
        patch = self.config["patch"]
        content, z = self.E(x)
        z_swap = z.roll(1, 0)  # another person's identity for the same content
        # D
        self.opt_d.zero_grad()
        with torch.no_grad():
            rec = self.G(content, z)
            swapped = self.G(content, z_swap)
        fakes = torch.cat([rec, swapped])
        loss_d = F.softplus(-self.D(x)).mean() + F.softplus(self.D(fakes)).mean()
        loss_d = loss_d + F.softplus(-self.D_local(random_patches(x, 4, patch))).mean() \
            + F.softplus(self.D_local(random_patches(swapped, 4, patch))).mean()
        if self.steps % 16 == 0:  # lazy R1 (gamma 10), as in StyleGAN2
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.D(xr).sum(), xr, create_graph=True)
            loss_d = loss_d + 16 * 5.0 * g.pow(2).flatten(1).sum(1).mean()
        loss_d.backward()
        self.opt_d.step()
        # E + G
        self.opt_g.zero_grad()
        rec = self.G(content, z)
        swapped = self.G(content, z_swap)
        loss_rec = (rec - x).abs().mean()
        loss_adv = F.softplus(-self.D(torch.cat([rec, swapped]))).mean() + \
            F.softplus(-self.D_local(random_patches(swapped, 4, patch))).mean()
        c_sw, z_sw = self.E(_low_pass(swapped))
        loss_content = (c_sw - content.detach()).abs().mean()
        loss_identity = (1 - (z_sw * z_swap.detach()).sum(1)).mean()
        # identity smoothing: codes along the slerp path must come back from the images they make
        t = torch.rand(len(z))
        z_t = slerp(z.detach(), z_swap.detach(), t)
        _, z_back = self.E(_low_pass(self.G(content, z_t)))
        loss_smooth = (1 - (z_back * z_t).sum(1)).mean()
        # identity consistency and smoothing are met exactly by a constant code, which is where a
        # fresh encoder starts (its pooled codes of all faces are nearly parallel): they ramp in
        # over ``warmup`` steps, once the identity classifier has spread the codes apart
        ramp = min(1.0, self.steps / self.config["warmup"]) if self.config["warmup"] else 1.0
        loss = (self.config["adversarial"] * loss_adv + self.config["reconstruction"] * loss_rec + loss_content
                + ramp * (loss_identity + self.config["smoothing"] * loss_smooth))
        loss_class = torch.zeros(())
        if self.id_centres is not None and "identity" in batch:
            cos = z @ unit(self.id_centres, 1).T
            target = F.one_hot(batch["identity"].long(), cos.shape[1]).to(cos.dtype)
            loss_class = F.cross_entropy(16.0 * (cos - 0.2 * target), batch["identity"].long())
            loss = loss + loss_class
        loss.backward()
        self.opt_g.step()
        self.steps += 1
        return {"d": loss_d.item(), "g_adv": loss_adv.item(), "rec": loss_rec.item(), "content": loss_content.item(),
                "identity": loss_identity.item(), "smooth": loss_smooth.item(), "class": loss_class.item()}
