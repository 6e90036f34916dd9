"""`faceanon train {ciagan,fit,cfa}`: train one of the papers' networks on identity folders.

Resumable (the checkpoint in --out is picked up), with a loss log (log.jsonl), sample grids
every --every steps and `--export` to write the small inference checkpoint the anonymizers load.

    faceanon train ciagan --data ../shared/data/celeba_faces/images --out runs/ciagan --steps 20000
    faceanon train ciagan --out runs/ciagan --export faceanon/models/nets/weights/ciagan.pt
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ...errors import UsageError
from ...io.atomic import atomic_path
from ...viz import grid, label, save_png
from .data import FaceCrops

NETWORKS = ("ciagan", "fit", "cfa")
DEFAULTS = {  # the CPU versions trained by this project; --width 1 --size 128 gives the papers' sizes
    "ciagan": {"size": 64, "width": 0.5, "batch": 8},
    "fit": {"size": 64, "width": 0.25, "batch": 8},
    "cfa": {"size": 64, "width": 0.25, "batch": 8},
}


def create(name: str, config: dict) -> torch.nn.Module:
    if name == "ciagan":
        from .ciagan import CIAGAN

        return CIAGAN(config["size"], config["classes"], config["width"])
    if name == "fit":
        from ..sface_torch import build_sface
        from .fitnet import FITNet

        sface = build_sface()
        sface.train(False)  # batch statistics of small CPU batches would wreck its BatchNorm
        return FITNet(config["size"], config["classes"], config["width"], recognizer=sface,
                      train_recognizer_trunk=config.get("train_recognizer_trunk", config["width"] >= 1))
    if name == "cfa":
        from .cfanet import CFANet

        # CPU run: batch 8 and a few thousand steps; at the paper-like weights (lr 2e-3, L1 weight
        # 1) the adversarial game took over after ~500 steps and every face became one template,
        # so the small model weights reconstruction 10x and steps at half the rate
        return CFANet(config["size"], config["width"], lr=1e-3, patch=max(16, config["size"] // 2),
                      classes=config["classes"], warmup=1000, reconstruction=10.0)
    raise UsageError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")


def make_batch(name: str, data: FaceCrops, rng: np.random.Generator, n: int) -> dict:
    idx = rng.integers(0, len(data), n)
    batch = {"image": data.tensor(idx), "identity": torch.from_numpy(data.labels[idx])}
    if name == "ciagan":
        from .ciagan import face_mask, landmark_image

        s = data.size
        batch["landmarks"] = torch.from_numpy(np.stack([landmark_image(data.points[i], s) for i in idx]))
        batch["mask"] = torch.from_numpy(np.stack([face_mask(data.points[i], s) for i in idx])).expand(-1, 3, -1, -1)
        k = len(data.identities)
        target = (data.labels[idx] + rng.integers(1, k, n)) % k  # never the person themself
        batch["target"] = torch.from_numpy(target)
        batch["target_image"] = data.tensor(data.same_identity(target, rng))
        # siamese pairs: half of the same person, half random
        other = np.where(rng.random(n) < 0.5, data.same_identity(data.labels[idx], rng), rng.integers(0, len(data), n))
        batch["other_image"] = data.tensor(other)
        batch["same"] = torch.from_numpy((data.labels[other] == data.labels[idx]).astype(np.float32))
    return batch


def _to_uint8(x: torch.Tensor, signed: bool) -> list[np.ndarray]:
    x = (x + 1) / 2 if signed else x
    return [(t.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for t in x]


@torch.no_grad()
def sample_rows(name: str, model, batch: dict, rng: np.random.Generator) -> tuple[list[str], list[list[np.ndarray]]]:
    """Columns of a sample grid: original and what the network makes of it."""
    was = model.training
    model.eval()
    try:
        if name == "ciagan":
            cols = {"original": batch["image"], "anonymized": model.anonymize(batch)}
            signed = False
        elif name == "fit":
            x = batch["image"] * 2 - 1
            pw = model.passwords(len(x), rng)
            out = model.forward_all(x, pw)
            cols = {"original": x, "password p": out["M"], "other password": out["M2"], "restored": out["R"],
                    "wrong restore": out["WR"]}
            signed = True
        else:
            x = batch["image"] * 2 - 1
            content, z = model.E(x)
            cols = {"original": x, "reconstructed": model.G(content, z)}
            for theta in (60, 120):
                cols[f"theta {theta}"] = model.anonymize(x, theta, torch.Generator().manual_seed(0))
            signed = True
    finally:
        model.train(was)
    return list(cols), [_to_uint8(v, signed) for v in cols.values()]


def save_samples(path: Path, names: list[str], columns: list[list[np.ndarray]]) -> None:
    tiles = []
    for row in range(len(columns[0])):
        for c, col in enumerate(columns):
            t = np.kron(col[row], np.ones((2, 2, 1), np.uint8)) if col[row].shape[0] < 96 else col[row]
            tiles.append(label(t, names[c]) if row == 0 else t)
    save_png(path, grid(tiles, len(columns)))


def _optimizers(model) -> dict:
    return {k: v for k, v in vars(model).items() if k.startswith("opt_")}


def save_checkpoint(path: Path, name: str, model, config: dict, step: int, rng: np.random.Generator) -> None:
    state = {"name": name, "config": config, "step": step, "model": model.state_dict(),
             "optimizers": {k: o.state_dict() for k, o in _optimizers(model).items()},
             "rng": rng.bit_generator.state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train(name: str, data_roots: list[str], out: Path, steps: int, every: int = 200, size: int | None = None,
          width: float | None = None, batch: int | None = None, device: str = "cpu", threads: int = 0,
          seed: int = 0, progress: bool = True) -> dict:
    out = Path(out)
    ckpt = out / "checkpoint.pt"
    if threads:
        torch.set_num_threads(threads)
    state = torch.load(ckpt, map_location="cpu", weights_only=False) if ckpt.exists() else None
    if state is not None:
        if state["name"] != name:
            raise UsageError(f"{ckpt} holds a {state['name']} run, not {name}")
        config = state["config"]
    else:
        if not data_roots:
            raise UsageError("--data is required to start a run")
        d = DEFAULTS[name]
        config = {"size": size or d["size"], "width": width or d["width"], "batch": batch or d["batch"],
                  "data": [str(Path(r).resolve()) for r in data_roots], "seed": seed}
    data = FaceCrops([Path(r) for r in config["data"]], config["size"], progress=progress)
    config["classes"] = len(data.identities)
    model = create(name, config)
    rng = np.random.default_rng(config["seed"])
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        for k, o in _optimizers(model).items():
            o.load_state_dict(state["optimizers"][k])
        rng.bit_generator.state = state["rng"]
        step = state["step"]
        if hasattr(model, "steps"):  # CFA-Net counts its steps (lazy R1): one per training step
            model.steps = step
    model.to(device)
    out.mkdir(parents=True, exist_ok=True)
    fixed = make_batch(name, data, np.random.default_rng(12345), 6)  # the same faces in every sample grid
    t0 = time.time()
    torch.manual_seed(config["seed"] + step)
    with open(out / "log.jsonl", "a") as log:
        while step < steps:
            b = {k: v.to(device) for k, v in make_batch(name, data, rng, config["batch"]).items()}
            losses = model.train_step(b, rng) if name == "fit" else model.train_step(b)
            step += 1
            if step % 10 == 0 or step == steps:
                log.write(json.dumps({"step": step, "seconds": round(time.time() - t0, 1),
                                      **{k: round(v, 5) for k, v in losses.items()}}) + "\n")
                log.flush()
            if step % every == 0 or step == steps:
                model.cpu()  # checkpoint and samples on the CPU, once
                save_checkpoint(ckpt, name, model, config, step, rng)
                names, cols = sample_rows(name, model, fixed, np.random.default_rng(0))
                save_samples(out / f"samples_{step:06d}.png", names, cols)
                model.to(device)
                if progress:
                    print(f"{name} step {step}/{steps} {json.dumps({k: round(v, 3) for k, v in losses.items()})} "
                          f"({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    return {"step": step, "config": config}


def export(run: Path, dest: Path) -> None:
    """The inference part of a run (generator side, float16) as a small file to ship."""
    state = torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)
    keep = {"ciagan": ("G.",), "fit": ("T.",), "cfa": ("E.", "G.")}[state["name"]]
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items() if k.startswith(keep)}
    with atomic_path(Path(dest)) as tmp:
        torch.save({"name": state["name"], "config": state["config"], "step": state["step"], "weights": weights}, tmp)
