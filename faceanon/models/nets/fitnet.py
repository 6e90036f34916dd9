"""FIT (Gu et al., ECCV 2020): the password-conditioned face identity transformer.

As in the official code (laoreja/face-identity-transformer): the transformer T is a 9-block
ResNet generator with batch norm (batch statistics always; see transform_one) and
resize-convolution (nearest x2 + 3x3 conv) instead of transposed convolution; the N-bit password
(bits as +-0.5) is tiled into N constant channels beside the RGB input. The inverse of password p is its bitwise complement
(-z). The auxiliary network Q is a PatchGAN front end + a stride-4 conv + 2x2 average pooling
and N/4 parallel 16-way heads, one per 4-bit group, trained with T to tell which password links
two images (L_aux). Discriminators: one PatchGAN per output kind (anonymized M, recovered R,
wrongly recovered WR) at full resolution plus one shared at half resolution (LSGAN). The
recognizer F is updated adversarially with a 10x lower learning rate: it learns to recognise M
and WR as the true person and not R; T learns the opposite.

Here F is this project's differentiable SFace (models/sface_torch.py) with a cosine-softmax
identity head (the paper's SphereFace with A-Softmax is not available offline); so the
shipped model is judged by dlib."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ch, patchgan

PASSWORD_BITS = 16


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), _bn(c), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), _bn(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Transformer(nn.Module):
    """T(image in [-1, 1], password z in {-0.5, 0.5}^N) -> image in [-1, 1]."""

    def __init__(self, bits: int = PASSWORD_BITS, ngf: int = 64, blocks: int = 9, width: float = 1.0) -> None:
        super().__init__()
        g = ch(ngf, width)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3 + bits, g, 7, bias=False), _bn(g), nn.ReLU()]
        for m in (1, 2):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(g * m, g * m * 2, 3, stride=2, bias=False), _bn(g * m * 2), nn.ReLU()]
        layers += [ResnetBlock(g * 4) for _ in range(blocks)]
        for m in (4, 2):  # resize-convolution: no checkerboard artefacts
            layers += [nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1), nn.Conv2d(g * m, g * m // 2, 3), _bn(g * m // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(g, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        tiled = z[:, :, None, None].expand(-1, -1, *image.shape[2:])
        return self.net(torch.cat([image, tiled], 1))


class AuxiliaryQ(nn.Module):
    """Which password links two images: N/4 heads of 16 classes (one per 4-bit group)."""

    def __init__(self, bits: int = PASSWORD_BITS, ndf: int = 64, width: float = 1.0) -> None:
        super().__init__()
        d = ch(ndf, width)
        self.features = nn.Sequential(
            nn.Conv2d(6, d, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(d, d * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(d * 2), nn.LeakyReLU(0.2),
            nn.Conv2d(d * 2, d * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(d * 4), nn.LeakyReLU(0.2),
            nn.Conv2d(d * 4, d * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(d * 8), nn.LeakyReLU(0.2),
            nn.Conv2d(d * 8, d * 8, 4, 4, 0, bias=False), nn.BatchNorm2d(d * 8), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleList([nn.Linear(d * 8, 16) for _ in range(bits // 4)])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        f = self.features(torch.cat([a, b], 1))
        return [h(f) for h in self.heads]


class Discriminators(nn.Module):
    """One PatchGAN per output kind at full resolution + one shared at half resolution."""

    KINDS = ("M", "R", "WR")

    def __init__(self, ndf: int = 64, width: float = 1.0) -> None:
        super().__init__()
        d = ch(ndf, width)
        self.private = nn.ModuleDict({k: patchgan(3, d) for k in self.KINDS})
        self.shared = patchgan(3, d)
        self.down = nn.AvgPool2d(3, 2, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor, kind: str) -> list[torch.Tensor]:
        return [self.private[kind](x), self.shared(self.down(x))]


def password_bits(p: np.ndarray | int, bits: int = PASSWORD_BITS) -> torch.Tensor:
    """Integers -> (B, bits) tensor of +-0.5, most significant bit first."""
    p = np.atleast_1d(np.asarray(p, np.int64))
    b = (p[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    return torch.from_numpy(b.astype(np.float32) - 0.5)


def password_groups(p: np.ndarray, bits: int = PASSWORD_BITS) -> torch.Tensor:
    """(B, bits/4) 4-bit groups (hex digits, most significant first): Q's targets."""
    p = np.asarray(p, np.int64)
    shifts = np.arange(bits - 4, -1, -4)
    return torch.from_numpy((p[:, None] >> shifts) & 15)


def inverse_password(p: np.ndarray, bits: int = PASSWORD_BITS) -> np.ndarray:
    return (2**bits - 1) - np.asarray(p, np.int64)


def transform_one(T: "Transformer", image: torch.Tensor, password: int, companions: int = 7) -> torch.Tensor:
    """T on one image (1, 3, S, S) under ``password``, as it was trained: in a batch of faces
    under different passwords.

    T's batch norm always uses batch statistics. Alone in its batch, an image's password planes
    are constant, so the first convolution turns them into a constant per channel, which the
    next batch norm subtracts again: every password would give the same output. Training batches
    mixed passwords, so at inference the image goes in beside ``companions`` copies of itself
    under other passwords (derived from ``password``, so the result is deterministic)."""
    rng = np.random.default_rng(password)
    others = (password + rng.integers(1, 2**PASSWORD_BITS, companions)) % 2**PASSWORD_BITS
    z = password_bits(np.concatenate([[password], others])).to(image.device)
    return T(image.expand(len(z), -1, -1, -1), z)[:1]


def password_from_text(text: str, bits: int = PASSWORD_BITS) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") % (2**bits)


def lsgan(preds: list[torch.Tensor], real: bool) -> torch.Tensor:
    return sum(F.mse_loss(p, torch.full_like(p, 1.0 if real else 0.0)) for p in preds)


class FITNet(nn.Module):
    """T, Q, D and the recognizer F with its identity head, and one training step."""

    def __init__(self, img_size: int = 64, num_classes: int = 150, width: float = 0.5, blocks: int = 9,
                 lr: float = 1e-4, recognizer: nn.Module | None = None, train_recognizer_trunk: bool = True) -> None:
        super().__init__()
        self.config = {"img_size": img_size, "num_classes": num_classes, "width": width, "blocks": blocks, "lr": lr,
                       "train_recognizer_trunk": train_recognizer_trunk}
        self.T = Transformer(width=width, blocks=blocks)
        self.Q = AuxiliaryQ(width=width)
        self.D = Discriminators(width=width)
        self.F = recognizer
        if recognizer is not None:
            self.id_head = nn.Parameter(torch.randn(num_classes, 128) * 0.01)
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(list(self.T.parameters()) + list(self.Q.parameters()), lr, betas=betas)
        d_groups = [{"params": self.D.parameters(), "lr": lr}]
        if recognizer is not None:
            # The paper updates the whole recognizer; on a CPU the trunk's weight gradients cost
            # most of a step, so the CPU model may keep the trunk fixed and train only its head.
            if not train_recognizer_trunk:
                self.F.requires_grad_(False)
            trunk = list(self.F.parameters()) if train_recognizer_trunk else []
            d_groups.append({"params": trunk + [self.id_head], "lr": lr / 10})
        self.opt_d = torch.optim.Adam(d_groups, lr, betas=betas)

    def train(self, mode: bool = True) -> "FITNet":
        super().train(mode)
        if self.F is not None:  # the recognizer keeps its BatchNorm statistics: tiny CPU batches
            self.F.train(False)
        return self

    # recognizer: embeddings of the aligned face and a cosine-softmax identity loss
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        crop = F.interpolate((x + 1) * 127.5, size=(112, 112), mode="bilinear", align_corners=False)
        e = self.F(crop)
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-8)

    def id_loss(self, e: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        w = self.id_head / self.id_head.norm(dim=1, keepdim=True)
        return F.cross_entropy(16.0 * e @ w.T, labels)

    def passwords(self, n: int, rng: np.random.Generator) -> dict:
        top = 2**PASSWORD_BITS
        p = rng.integers(0, top, n)
        wrong = (p + rng.integers(1, top, n)) % top
        inv = inverse_password(p)
        wrong_inv = (inv + rng.integers(1, top, n)) % top
        wrong_inv2 = (inv + rng.integers(1, top, n)) % top
        wrong_inv2 = np.where(wrong_inv2 == wrong_inv, (wrong_inv2 + 1) % top, wrong_inv2)
        wrong_inv2 = np.where(wrong_inv2 == inv, (wrong_inv2 + 1) % top, wrong_inv2)
        return {"p": p, "wrong": wrong, "inv": inv, "wrong_inv": wrong_inv, "wrong_inv2": wrong_inv2}

    def forward_all(self, image: torch.Tensor, pw: dict) -> dict:
        z = {k: password_bits(v).to(image.device) for k, v in pw.items()}
        fake = self.T(image, z["p"])
        return {"M": fake, "M2": self.T(image, z["wrong"]), "R": self.T(fake, z["inv"]),
                "WR": self.T(fake, z["wrong_inv"]), "WR2": self.T(fake, z["wrong_inv2"])}

    def train_step(self, batch: dict, rng: np.random.Generator) -> dict:
        image, labels = batch["image"] * 2 - 1, batch["identity"]
        pw = self.passwords(len(image), rng)
        out = self.forward_all(image, pw)
        # D and F
        self.opt_d.zero_grad()
        loss_d = lsgan(self.D(image, "M"), True) + lsgan(self.D(image, "R"), True) + lsgan(self.D(image, "WR"), True)
        for kind in ("M", "R", "WR"):
            loss_d = loss_d + lsgan(self.D(out[kind].detach(), kind), False)
        loss_d = 0.5 * loss_d
        loss_f = torch.zeros(())
        if self.F is not None:
            e = {k: self.embed(v.detach()) for k, v in (("real", image), ("M", out["M"]), ("R", out["R"]), ("WR", out["WR"]))}
            a = {k: self.id_loss(v, labels) for k, v in e.items()}
            # F: recognise M and WR as the true person, not R (the adversarial recognizer)
            loss_f = 2 * 0.5 * (a["real"] + (a["M"] - a["R"] + a["WR"]) / 3)
        (loss_d + loss_f).backward()
        self.opt_d.step()
        # T and Q
        self.opt_g.zero_grad()
        loss_gan = sum(lsgan(self.D(out[k], k), True) for k in ("M", "R", "WR")) / 3
        groups = {k: password_groups(pw[k]).to(image.device) for k in ("p", "inv", "wrong_inv")}
        loss_aux = sum(F.cross_entropy(h, groups["p"][:, i]) for i, h in enumerate(self.Q(image, out["M"])))
        loss_aux = loss_aux + sum(F.cross_entropy(h, groups["inv"][:, i]) for i, h in enumerate(self.Q(out["M"], out["R"])))
        loss_aux = loss_aux + sum(F.cross_entropy(h, groups["wrong_inv"][:, i]) for i, h in enumerate(self.Q(out["M"], out["WR"])))
        l1 = lambda a, b: (a - b).abs().mean()  # noqa: E731
        loss = loss_gan + loss_aux + 10 * l1(out["M"], image) + 10 * l1(out["WR"], image) + 100 * l1(out["R"], image)
        logs = {}
        if self.F is not None:
            e = {k: self.embed(out[k]) for k in ("M", "M2", "R", "WR", "WR2")}
            fr = 2 * (-self.id_loss(e["M"], labels) + self.id_loss(e["R"], labels) - self.id_loss(e["WR"], labels)) / 3
            div = lambda a, b: F.relu((a * b).sum(1)).mean()  # noqa: E731  cosine embedding loss, target -1
            feat = 2 * div(e["M"], e["M2"]) + div(e["WR"], e["WR2"]) + div(e["M"], e["WR"])
            loss = loss + fr + feat
            logs = {"g_recognizer": fr.item(), "g_diversity": feat.item()}
        loss.backward()
        self.opt_g.step()
        return {"d": loss_d.item(), "f": loss_f.item(), "g_gan": loss_gan.item(), "aux": loss_aux.item(),
                "recon_l1": l1(out["R"], image).item(), **logs}
