"""Realism judge: a classifier two-sample test (C2ST) between real and anonymized face crops.

A small CNN is trained from scratch, with a fixed recipe and seed, to tell real face crops from
anonymized ones; its accuracy on crops it never saw is the figure. 0.5 means the two sets cannot
be told apart, 1.0 means every anonymized face gives itself away (a blur does). Unlike a Fréchet
distance on recognizer features, it does not grow with a change of identity, only with what
makes a face look made: seams, smears, plastic skin, a blur.

Both sets go through exactly the same steps - a square crop around the detector's box of the
*original* face, a resize to CROP pixels and a JPEG round trip - so neither file format nor crop
placement can give a set away. The people in the two sets are disjoint (a person's look is not
a cue), and the train/validation/test split is by person too.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

CROP = 64  # judge input side in pixels
CONTEXT = 1.3  # square crop side / larger side of the face box: the blend border is inside
JPEG_QUALITY = 90
EPOCHS = 20
BATCH = 64
SEED = 0


def judge_half(person: str) -> str:
    """Which side of the judge a person is on: "fake" people give anonymized crops, "real"
    people give untouched ones. A fixed hash, so every method is judged on the same split."""
    return "fake" if zlib.crc32(person.encode()) & 1 else "real"


def judge_crop(image: np.ndarray, box) -> np.ndarray:
    """The judge's view of one face: a square CONTEXT x box crop (outside the image: black),
    resized to CROP x CROP and round-tripped through JPEG. RGB uint8 in and out."""
    x1, y1, x2, y2 = [float(v) for v in box[:4]]
    side = CONTEXT * max(x2 - x1, y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # an affine map from the square to CROP x CROP: the same sampling wherever the face sits
    s = CROP / side
    m = np.array([[s, 0, CROP / 2 - s * cx], [0, s, CROP / 2 - s * cy]], np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    if s < 1:  # INTER_AREA is not available for warps: shrink first, then place
        small = cv2.resize(image, None, fx=s, fy=s, interpolation=interp)
        m = np.array([[1, 0, CROP / 2 - s * cx], [0, 1, CROP / 2 - s * cy]], np.float32)
        crop = cv2.warpAffine(small, m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderValue=0)
    else:
        crop = cv2.warpAffine(image, m, (CROP, CROP), flags=interp, borderValue=0)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def people_bootstrap(correct: np.ndarray, people: list[str], sides: np.ndarray, seed: int = SEED,
                     rounds: int = 2000) -> tuple[float, float]:
    """95 % interval of the judge's accuracy, resampling *people* (with replacement, on each
    side apart) rather than crops: a person's photos look alike, so crops of one person are not
    independent trials, and an interval that counts crops is too narrow when people have many
    photos (CelebA: 8 a person here)."""
    rng = np.random.default_rng(seed)
    groups = []
    for side in (0, 1):
        rows = np.flatnonzero(sides == side)
        by_person: dict[str, list[int]] = {}
        for r in rows:
            by_person.setdefault(people[r], []).append(int(r))
        groups.append([np.array(v) for v in by_person.values()])
    if min(len(g) for g in groups) == 0:
        return float("nan"), float("nan")
    # per person: (number correct, number of crops); an accuracy is sum correct / sum crops
    stats = [np.array([[correct[v].sum(), len(v)] for v in g], np.float64) for g in groups]
    accs = np.empty(rounds)
    for k in range(rounds):
        picks = [st[rng.integers(0, len(st), len(st))] for st in stats]
        # each side weighs half, as in the balanced test set
        accs[k] = 0.5 * sum(p[:, 0].sum() / p[:, 1].sum() for p in picks)
    lo, hi = np.percentile(accs, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class CropSet:
    """Judge crops (n, CROP, CROP, 3) uint8 and the person each one shows."""

    crops: list
    people: list

    def add(self, crop: np.ndarray, person: str) -> None:
        self.crops.append(crop)
        self.people.append(person)

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def empty(cls) -> "CropSet":
        return cls([], [])


def _split_people(people: list[str], rng: np.random.Generator) -> dict[str, str]:
    """Person -> "train" / "val" / "test" (about 60 / 15 / 25 % of the people)."""
    unique = sorted(set(people))
    order = rng.permutation(len(unique))
    n = len(unique)
    cut1, cut2 = int(round(0.6 * n)), int(round(0.75 * n))
    out = {}
    for rank, i in enumerate(order):
        out[unique[i]] = "train" if rank < cut1 else ("val" if rank < cut2 else "test")
    return out


def _no_figure(n: int) -> dict:
    nan = float("nan")
    return {"c2st": nan, "c2st_low": nan, "c2st_high": nan, "c2st_test": 0, "c2st_test_people": 0, "c2st_n": n}


def _net():
    import torch.nn as nn

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    # Full resolution in the first layer (pores, grain, JPEG blocks and seams are 1-2 px cues),
    # then narrow and halving: ~16 MFLOP a crop, so a judge trains in a minute or two on a CPU.
    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                         *block(32, 64), nn.MaxPool2d(2), *block(64, 128), nn.MaxPool2d(2), *block(128, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(128, 1))


def two_sample_test(real: CropSet, fake: CropSet, seed: int = SEED, epochs: int = EPOCHS) -> dict:
    """Train the judge on real (label 0) vs fake (label 1) crops and report its accuracy on the
    held-back people, with a 95 % interval (people_bootstrap). The two sets are first cut to the
    same size (so 0.5 is chance), then split by person; the epoch kept is the one best on the
    validation people."""
    import torch

    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    if n < 20:
        return _no_figure(n)
    take_r, take_f = rng.permutation(len(real))[:n], rng.permutation(len(fake))[:n]
    x = np.stack([real.crops[i] for i in take_r] + [fake.crops[i] for i in take_f])
    y = np.r_[np.zeros(n), np.ones(n)].astype(np.float32)
    # A person is in one split only, and each side is split on its own so every split holds
    # both sides; the test rows are then cut to equal numbers of real and fake (chance = 0.5).
    people_r, people_f = [real.people[i] for i in take_r], [fake.people[i] for i in take_f]
    split_r, split_f = _split_people(people_r, rng), _split_people(people_f, rng)
    part = np.array([split_r[p] for p in people_r] + [split_f[p] for p in people_f])
    test_r, test_f = np.flatnonzero(part[:n] == "test"), n + np.flatnonzero(part[n:] == "test")
    m = min(len(test_r), len(test_f))
    part[np.r_[rng.permutation(test_r)[m:], rng.permutation(test_f)[m:]].astype(int)] = "unused"

    torch.manual_seed(seed)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    yt = torch.from_numpy(y)
    idx = {k: np.flatnonzero(part == k) for k in ("train", "val", "test")}
    if min(len(v) for v in idx.values()) == 0 or len(np.unique(y[idx["train"]])) < 2:
        return _no_figure(n)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)

    def predict(rows: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            out = [net(xt[rows[i : i + 256]]).squeeze(1) for i in range(0, len(rows), 256)]
        return (torch.cat(out) > 0).numpy()

    best_val, best_state = -1.0, None
    train = torch.from_numpy(idx["train"])
    for _ in range(epochs):
        net.train()
        for b in train[torch.randperm(len(train), generator=gen)].split(BATCH):
            xb = xt[b]
            # the same light augmentation on both sides: mirror, and a shift of up to 4 px
            flip = torch.rand(len(b), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=gen))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            opt.zero_grad()
            loss_fn(net(xb).squeeze(1), yt[b]).backward()
            opt.step()
        val_acc = float((predict(idx["val"]) == y[idx["val"]].astype(bool)).mean())
        if val_acc > best_val:
            best_val = val_acc
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    test = idx["test"]  # half real, half fake
    correct = predict(test) == y[test].astype(bool)
    all_people = people_r + people_f
    lo, hi = people_bootstrap(correct, [all_people[i] for i in test], y[test].astype(int), seed)
    return {"c2st": float(correct.mean()), "c2st_low": lo, "c2st_high": hi, "c2st_test": int(len(test)),
            "c2st_test_people": len({all_people[i] for i in test}), "c2st_n": n}
