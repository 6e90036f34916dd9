"""CIAGAN (Maximov et al., CVPR 2020): landmarks + masked background + identity control vector
-> a new face, blended into the background.

Layout as in the official code (dvl-tum/ciagan, source/arch/arch_unet_flex.py), which matches
the supplement's tables: a 6-channel input (landmark drawing + background with the face masked
out), residual down blocks to 256 x 4 x 4, the one-hot identity through 7 fully connected layers
reshaped to 32 x 4 x 4 and three convolutions to 256 x 4 x 4, concatenation, 4 residual blocks,
residual up blocks to 3 x S x S. The discriminator sees image + landmarks (residual down blocks,
two dense layers, LSGAN). Identity guidance: a siamese ResNet-18 trained jointly with a
contrastive loss (margin 3), the generator pulled towards a real photo of the target identity.

One addition for CPU training (``reconstruction`` > 0): half of each batch is generated with the
person's *own* control vector and pulled (L1) towards the real face inside the mask. The face
is masked out of the generator's input, so this cannot copy it: it is a supervised signal that
"landmarks + surroundings + this control vector -> this person's face", which the paper gets
from adversarial and siamese losses over many GPU epochs. The other half gets another identity
and the paper's losses only.
``width`` scales every channel count (1.0 = the paper; the CPU model is narrower)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, ResDown, ResUp, SNConv, ch

# landmark drawing: jaw 0-16, nose bridge 27-30, inner lips 60-67 (closed), 1 px lines
_LINES = [list(range(0, 17)), list(range(27, 31)), list(range(60, 68)) + [60]]


def landmark_image(pts68: np.ndarray, size: int) -> np.ndarray:
    """The conditioning drawing: blue lines on white, float RGB in [0, 1], (3, size, size)."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    for line in _LINES:
        p = np.round(pts68[line]).astype(np.int32)
        cv2.polylines(canvas, [p], False, (0, 0, 255), 1)
    return canvas.transpose(2, 0, 1).astype(np.float32) / 255.0


def face_mask(pts68: np.ndarray, size: int) -> np.ndarray:
    """1 inside the jaw line closed at brow height (the region the generator replaces)."""
    p = pts68
    poly = np.concatenate([[[p[0, 0], p[19, 1]]], p[0:17], [[p[16, 0], p[24, 1]]]]).astype(np.int32)
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [poly], 1)
    return m.astype(np.float32)[None]


class Generator(nn.Module):
    def __init__(self, img_size: int = 128, num_classes: int = 1200, width: float = 1.0) -> None:
        super().__init__()
        if img_size not in (64, 128):
            raise ValueError("CIAGAN is defined for 64 or 128 px")
        c = lambda n: ch(n, width)  # noqa: E731
        self.img_size, self.num_classes = img_size, num_classes
        enc = []
        cin = 6
        if img_size == 128:
            enc += [ResDown(6, c(32)), nn.InstanceNorm2d(c(32), affine=True)]
            cin = c(32)
        for cout in (64, 128, 256, 256):
            enc += [ResDown(cin, c(cout)), nn.InstanceNorm2d(c(cout), affine=True)]
            cin = c(cout)
        self.encoder = nn.Sequential(*enc)
        dims = [num_classes, c(256), c(256), c(256), c(256), c(512), c(512), c(512)]
        mlp = []
        for a, b in zip(dims[:-1], dims[1:]):
            mlp += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.identity_mlp = nn.Sequential(*mlp)
        self._id_ch = c(512) // 16
        idc = []
        cin = self._id_ch
        for cout in (64, 128, 256):
            idc += [SNConv(cin, c(cout)), nn.LeakyReLU(0.2), nn.InstanceNorm2d(c(cout), affine=True)]
            cin = c(cout)
        self.identity_conv = nn.Sequential(*idc)
        self.embed = nn.Sequential(SNConv(2 * c(256), c(256)), nn.InstanceNorm2d(c(256), affine=True))
        self.bottleneck = nn.Sequential(*[ResBlock(c(256)) for _ in range(4)])
        dec = []
        cin = c(256)
        outs = (256, 128, 64, 32) + ((16,) if img_size == 128 else ())
        for cout in outs:
            dec += [ResUp(cin, c(cout)), nn.InstanceNorm2d(c(cout), affine=True)]
            cin = c(cout)
        self.decoder = nn.Sequential(*dec)
        self.to_rgb = nn.Conv2d(cin, 3, 3, padding=1)

    def identity_code(self, onehot: torch.Tensor) -> torch.Tensor:
        h = self.identity_mlp(onehot).view(-1, self._id_ch, 4, 4)
        return self.identity_conv(h)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """x: (B, 6, S, S) landmark drawing + masked background in [0, 1]; onehot: (B, classes).
        Returns the raw generated face (B, 3, S, S); blend() puts it into the background."""
        h = torch.cat([self.encoder(x), self.identity_code(onehot)], 1)
        return self.to_rgb(self.decoder(self.bottleneck(self.embed(h))))


def blend(face: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return face * (1 - mask) + generated * mask


class Discriminator(nn.Module):
    def __init__(self, img_size: int = 128, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: ch(n, width)  # noqa: E731
        chans = [64, 128, 256, 512] + ([512] if img_size == 128 else [])
        layers, cin = [], 6
        for cout in chans:
            layers.append(ResDown(cin, c(cout)))
            cin = c(cout)
        self.features = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.Linear(cin * 16, c(1024)), nn.LeakyReLU(0.2), nn.Linear(c(1024), 1), nn.LeakyReLU(0.2))

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.dense(self.features(torch.cat([image, landmarks], 1)).flatten(1))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class IdentityNet(nn.Module):
    """The siamese network: CIFAR-style ResNet-18 trunk, embedding of size ``dim``."""

    def __init__(self, dim: int = 1200, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: ch(n, width)  # noqa: E731
        layers: list[nn.Module] = [nn.Conv2d(3, c(64), 3, 1, 1, bias=False), nn.BatchNorm2d(c(64)), nn.ReLU()]
        cin = c(64)
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_Basic(cin, c(cout), stride), _Basic(c(cout), c(cout), 1)]
            cin = c(cout)
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(cin, c(1024)), nn.ReLU(), nn.Linear(c(1024), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def contrastive(e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor, margin: float = 3.0) -> torch.Tensor:
    """0.5 * [y d^2 + (1 - y) max(0, margin - d)^2], d the Euclidean distance."""
    d2 = (e1 - e2).pow(2).sum(1)
    d = torch.sqrt(d2 + 1e-9)
    return (0.5 * (same * d2 + (1 - same) * F.relu(margin - d).pow(2))).mean()


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


class CIAGAN(nn.Module):
    """The three networks and one training step (siamese, critic, generator updates)."""

    def __init__(self, img_size: int = 64, num_classes: int = 150, width: float = 0.5, lr: float = 1e-4,
                 reconstruction: float = 10.0) -> None:
        super().__init__()
        self.config = {"img_size": img_size, "num_classes": num_classes, "width": width, "lr": lr,
                       "reconstruction": reconstruction}
        self.G = Generator(img_size, num_classes, width)
        self.D = Discriminator(img_size, width)
        self.S = IdentityNet(num_classes, width)
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr, betas=betas)
        self.opt_s = torch.optim.Adam(self.S.parameters(), lr, betas=betas)

    def inputs(self, batch: dict, own: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Generator inputs; the first ``own`` faces get their own identity (reconstruction)."""
        x = torch.cat([batch["landmarks"], batch["image"] * (1 - batch["mask"])], 1)
        target = batch["target"]
        if own:
            target = torch.cat([batch["identity"][:own], target[own:]])
        onehot = F.one_hot(target.long(), self.config["num_classes"]).float()
        return x, onehot

    def anonymize(self, batch: dict) -> torch.Tensor:
        x, onehot = self.inputs(batch)
        return blend(batch["image"], self.G(x, onehot), batch["mask"]).clamp(0, 1)

    def train_step(self, batch: dict) -> dict:
        """batch: image, landmarks, mask of the source faces; target (identity index) with
        target_image (a real photo of that identity); other_image + same (pairs for the siamese)."""
        # siamese on real pairs
        self.opt_s.zero_grad()
        loss_s = contrastive(self.S(batch["image"]), self.S(batch["other_image"]), batch["same"])
        loss_s.backward()
        self.opt_s.step()
        # critic
        own = len(batch["image"]) // 2 if self.config["reconstruction"] and "identity" in batch else 0
        x, onehot = self.inputs(batch, own)
        with torch.no_grad():
            fake = blend(batch["image"], self.G(x, onehot), batch["mask"])
        self.opt_d.zero_grad()
        loss_d = lsgan(self.D(batch["image"], batch["landmarks"]), True) + lsgan(self.D(fake, batch["landmarks"]), False)
        loss_d.backward()
        self.opt_d.step()
        # generator: fool D, look like the target identity to S
        self.opt_g.zero_grad()
        fake = blend(batch["image"], self.G(x, onehot), batch["mask"])
        loss_adv = lsgan(self.D(fake, batch["landmarks"]), True)
        loss_id = contrastive(self.S(fake[own:]), self.S(batch["target_image"][own:]).detach(), torch.ones(len(fake) - own))
        loss_rec = torch.zeros(())
        if own:
            m = batch["mask"][:own]
            loss_rec = ((fake[:own] - batch["image"][:own]).abs() * m).sum() / m.sum().clamp_min(1)
        (loss_adv + loss_id + self.config["reconstruction"] * loss_rec).backward()
        self.opt_g.step()
        return {"siamese": loss_s.item(), "critic": loss_d.item(), "g_adv": loss_adv.item(), "g_identity": loss_id.item(),
                "reconstruction": loss_rec.item()}
