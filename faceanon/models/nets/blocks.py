"""Building blocks shared by the networks."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


def ch(channels: int, width: float) -> int:
    """Channel count scaled by a width multiplier (the CPU models are narrower)."""
    return max(4, int(round(channels * width)))


class SNConv(nn.Module):
    """Reflection padding + spectrally normalised stride-1 conv (CIAGAN's ConvLayer)."""

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = spectral_norm(nn.Conv2d(cin, cout, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ResDown(nn.Module):
    """Pre-activation residual block halving the resolution by average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.ReLU(), SNConv(cin, cout), nn.ReLU(), SNConv(cout, cout), nn.AvgPool2d(2))
        self.skip = nn.Sequential(SNConv(cin, cout, 1), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class ResUp(nn.Module):
    """Residual block doubling the resolution (nearest upsampling + conv), instance norm."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.InstanceNorm2d(cin, affine=True), nn.ReLU(), nn.Upsample(scale_factor=2),
                                  SNConv(cin, cout), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(), SNConv(cout, cout))
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), SNConv(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class ResBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(SNConv(c, c), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
                                  SNConv(c, c), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def patchgan(cin: int, ndf: int = 64, n_layers: int = 3, norm: bool = True) -> nn.Sequential:
    """pix2pix's NLayerDiscriminator: 4x4 convs, LeakyReLU 0.2, a 1-channel patch map."""
    layers: list[nn.Module] = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
    c = ndf
    for n in range(1, n_layers + 1):
        c_next = ndf * min(2**n, 8)
        stride = 2 if n < n_layers else 1
        layers += [nn.Conv2d(c, c_next, 4, stride, 1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(c_next))
        layers.append(nn.LeakyReLU(0.2))
        c = c_next
    layers.append(nn.Conv2d(c, 1, 4, 1, 1, bias=False))
    return nn.Sequential(*layers)


class EqualLinear(nn.Module):
    """Linear layer with StyleGAN's equalized learning rate."""

    def __init__(self, cin: int, cout: int, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: weights scaled per sample by a style vector, then
    demodulated (each output channel renormalised to unit expected variance)."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.scale = 1 / math.sqrt(cin * k * k)
        self.affine = EqualLinear(style_dim, cin, bias_init=1.0)
        self.demodulate, self.upsample, self.k = demodulate, upsample, k

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, cin, h, w = x.shape
        s = self.affine(style).view(b, 1, cin, 1, 1)
        weight = self.scale * self.weight * s  # b, cout, cin, k, k
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            h, w = h * 2, w * 2
        cout = weight.shape[1]
        out = F.conv2d(x.reshape(1, b * cin, h, w), weight.reshape(b * cout, cin, self.k, self.k),
                       padding=self.k // 2, groups=b)
        return out.view(b, cout, h, w)


class StyledConv(nn.Module):
    """ModulatedConv -> noise -> bias + LeakyReLU(0.2) * sqrt(2)."""

    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim, upsample=upsample)
        self.noise_weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.conv(x, style)
        out = out + self.noise_weight * torch.randn(out.shape[0], 1, *out.shape[2:], device=out.device)
        return F.leaky_relu(out + self.bias, 0.2) * math.sqrt(2)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
