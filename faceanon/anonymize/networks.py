"""The papers' networks as anonymizers: `ciagan`, `fit-net` and `cfa-net` run the small
checkpoints this project trains (models/nets, `faceanon train`). Each face is aligned to the
networks' crop, transformed, and warped back through a soft face mask.

`register()` adds each name only when its `weights/<name>.pt` exists, so `faceanon methods`
never lists a method that cannot run (a user deleting or retraining a checkpoint included)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..align import landmarks5_from_68
from ..errors import FaceanonError, UsageError
from ..registry import Param
from ..types import Face
from .base import ANONYMIZERS, Anonymizer

NAMES = {"ciagan": "ciagan", "fit-net": "fit", "cfa-net": "cfa"}  # method -> checkpoint

WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "nets" / "weights"


@lru_cache(maxsize=3)
def load_network(name: str):
    """(module in eval mode, config) from the shipped checkpoint ``weights/<name>.pt``."""
    import torch

    path = WEIGHTS / f"{name}.pt"
    if not path.exists():
        raise FaceanonError(f"no trained {name} checkpoint at {path}; train one with `faceanon train {name} ...` "
                            f"and `faceanon train {name} --out RUN --export {path}`")
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = state["config"]
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state["weights"].items()}
    if name == "ciagan":
        from ..models.nets.ciagan import Generator

        net = Generator(cfg["size"], cfg["classes"], cfg["width"])
        net.load_state_dict({k[2:]: v for k, v in weights.items()})
    elif name == "fit":
        from ..models.nets.fitnet import Transformer

        net = Transformer(width=cfg["width"])
        net.load_state_dict({k[2:]: v for k, v in weights.items()})
    else:
        from torch import nn

        from ..models.nets.cfanet import Decoder, Encoder

        net = nn.Module()
        net.E = Encoder(cfg["width"], size=cfg["size"])
        net.G = Decoder(cfg["width"], id_dim=net.E.id_dim, size=cfg["size"])
        net.load_state_dict(weights)
    net.eval()
    return net, cfg


class _NetworkAnonymizer(Anonymizer):
    needs_landmarks68 = True
    paints_new_faces = True
    needs_torch = True
    network = ""

    def transform(self, net, cfg: dict, crop01: np.ndarray, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(S, S, 3) float crop in [0, 1] -> the network's output crop in [0, 1]."""
        raise NotImplementedError

    def apply(self, crop: np.ndarray, face: Face, rng: np.random.Generator):
        from ..models.nets.ciagan import face_mask
        from ..models.nets.data import alignment

        net, cfg = load_network(self.network)
        size = cfg["size"]
        m = alignment(landmarks5_from_68(face.landmarks68), size)
        aligned = cv2.warpAffine(crop, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        pts = face.landmarks68 @ m[:, :2].T + m[:, 2]
        out = self.transform(net, cfg, aligned.astype(np.float32) / 255.0, pts, rng)
        out = np.clip(out * 255.0, 0, 255).astype(np.uint8)
        inv = cv2.invertAffineTransform(m)
        h, w = crop.shape[:2]
        back = cv2.warpAffine(out, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # CIAGAN's mask (jaw line closed at the brows), grown a little and softened
        mask = face_mask(pts, size)[0]
        mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)), (0, 0), size / 64)
        return back, cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


class CIAGANAnonymizer(_NetworkAnonymizer):
    summary = "CIAGAN network (trained here, small): landmarks + masked background + identity control vector"
    network = "ciagan"
    params = {"identity": Param(int, -1, "index of the target identity (-1 = random per face, from --seed)", low=-1)}

    def __init__(self, identity: int = -1) -> None:
        if identity >= 0:
            classes = load_network(self.network)[1]["classes"]
            if identity >= classes:
                raise UsageError(f"parameter identity: must be -1..{classes - 1} (got {identity})")
        self.identity = identity

    def transform(self, net, cfg, crop01, pts, rng):
        import torch

        from ..models.nets.ciagan import blend, face_mask, landmark_image

        size, classes = cfg["size"], cfg["classes"]
        target = self.identity if self.identity >= 0 else int(rng.integers(classes))
        image = torch.from_numpy(crop01).permute(2, 0, 1).contiguous()[None]
        lm = torch.from_numpy(landmark_image(pts, size))[None]
        mask = torch.from_numpy(face_mask(pts, size))[None].expand(-1, 3, -1, -1)
        onehot = torch.zeros(1, classes)
        onehot[0, target] = 1
        with torch.no_grad():
            out = blend(image, net(torch.cat([lm, image * (1 - mask)], 1), onehot), mask).clamp(0, 1)
        return out[0].permute(1, 2, 0).numpy()


class FITNetAnonymizer(_NetworkAnonymizer):
    summary = "FIT identity transformer network (trained here, small), password-conditioned and reversible"
    network = "fit"
    params = {"password": Param(str, "", "the password (also --password); required")}

    def __init__(self, password: str = "") -> None:
        if not password:
            raise UsageError("method fit-net needs a password: --password P (or --param password=P)")
        self.password = password
        self.inverse = False  # set by `faceanon deanonymize`

    def transform(self, net, cfg, crop01, pts, rng):
        import torch

        from ..models.nets.fitnet import inverse_password, password_from_text, transform_one

        p = password_from_text(self.password)
        x = torch.from_numpy(crop01).permute(2, 0, 1).contiguous()[None] * 2 - 1
        with torch.no_grad():
            out = transform_one(net, x, int(inverse_password(p)) if self.inverse else p)
        return ((out[0] + 1) / 2).permute(1, 2, 0).numpy()


class CFANetAnonymizer(_NetworkAnonymizer):
    summary = "CFA-Net network (trained here, small): identity code at angle theta on the sphere"
    network = "cfa"
    strength = ("angle", [30, 60, 90, 120, 150, 180])  # no 0: an unchanged face gets the fallback blur
    params = {"angle": Param(float, 90.0, "angle in degrees between the face's identity code and the new one", low=0, high=180)}

    def __init__(self, angle: float = 90.0) -> None:
        self.angle = angle

    def transform(self, net, cfg, crop01, pts, rng):
        import torch

        from ..models.nets.cfanet import at_angle

        x = torch.from_numpy(crop01).permute(2, 0, 1).contiguous()[None] * 2 - 1
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        with torch.no_grad():
            content, z = net.E(x)
            out = net.G(content, at_angle(z, self.angle, g))
        return ((out[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()


def register() -> list[str]:
    """Register the network anonymizers whose checkpoints are present; returns their names."""
    classes = {"ciagan": CIAGANAnonymizer, "fit-net": FITNetAnonymizer, "cfa-net": CFANetAnonymizer}
    done = []
    for method, checkpoint in NAMES.items():
        if (WEIGHTS / f"{checkpoint}.pt").exists() and method not in ANONYMIZERS.names():
            ANONYMIZERS.register(method)(classes[method])
            done.append(method)
    return done
