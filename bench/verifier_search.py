"""Can a face/not-face verifier keep WIDER coverage at 0.98 while dropping the false alarms?

Candidates are every box of the cached detector views (bench/detector_search.py) at recall-first
thresholds, merged by NMS; each candidate carries the best score each view gave it, its size
and shape, and a HOG descriptor of its grey crop. A candidate is a face when it overlaps an
annotated box (IoU >= 0.3, ``invalid`` boxes counted as faces), the same rule as the precision
figure.

Cross-validated over 5 folds of photos: a logistic regression is trained on 4 folds and scores
the 5th; the keep threshold for fold k is the highest one at which the *other* folds' held-out
scores still cover ``--target`` of their faces of 16 px or more. Reported: held-out coverage
(16 px and up, 8-16 px) and precision (share of kept candidates on an annotated face).
Writes bench/results/verifier_search.json.

    python bench/verifier_search.py [--target 0.98] [--features scores,geometry,hog]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from detector_search import CACHE, FOLDS, score_photo  # noqa: E402
from faceanon.detect.base import box_iou, nms_indices  # noqa: E402
from faceanon.evaluate.coverage import load_annotations  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.verifier.model import fit_logistic, predict_logistic  # noqa: E402

VIEWS = {"yunet": 0.3, "centerface": 0.1, "yunet-x2": 0.3, "centerface-x2": 0.1}
CROP = 32
ON_FACE = "iou"  # or "centre": a detection is on a face when its centre lies inside an annotated box


def on_face(b: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """Which boxes ``b`` lie on an annotated face: IoU >= 0.3 (the precision rule of
    bench/wider_coverage.py) or, with ON_FACE = "centre", also a centre inside an annotated box
    (a looser or tighter box of the same face is no false alarm)."""
    if not len(b) or not len(gt_xyxy):
        return np.zeros(len(b), bool)
    hit = box_iou(b, gt_xyxy).max(1) >= 0.3
    if ON_FACE == "centre":
        c = (b[:, :2] + b[:, 2:4]) / 2
        inside = ((c[:, None, 0] >= gt_xyxy[None, :, 0]) & (c[:, None, 0] <= gt_xyxy[None, :, 2])
                  & (c[:, None, 1] >= gt_xyxy[None, :, 1]) & (c[:, None, 1] <= gt_xyxy[None, :, 3])).any(1)
        hit |= inside
    return hit


def hog(grey: np.ndarray) -> np.ndarray:
    """A 4x4-cell, 9-bin gradient-orientation histogram of a CROP x CROP crop (144 values)."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    mag, ang = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    bins = (ang % 180 / 20).astype(int) % 9
    cell = CROP // 4
    out = np.zeros((4, 4, 9), np.float32)
    for i in range(4):
        for j in range(4):
            b = bins[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].ravel()
            m = mag[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].ravel()
            out[i, j] = np.bincount(b, m, minlength=9)
    out = out.ravel()
    return out / (np.linalg.norm(out) + 1e-6)


def candidates(cached: dict, rel: str) -> tuple[np.ndarray, np.ndarray]:
    """Merged boxes (N, 4) and per-view best scores (N, len(VIEWS))."""
    rows = [(r[:4], r[4]) for v, t in VIEWS.items() for r in cached[v][rel] if r[4] >= t]
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros((0, len(VIEWS)), np.float32)
    boxes = np.array([b for b, _ in rows], np.float32)
    scores = np.array([s for _, s in rows], np.float32)
    keep = boxes[nms_indices(boxes, scores, 0.4)]
    per_view = np.zeros((len(keep), len(VIEWS)), np.float32)
    for k, v in enumerate(VIEWS):
        vb = np.array([r[:4] for r in cached[v][rel]], np.float32).reshape(-1, 4)
        vs = np.array([r[4] for r in cached[v][rel]], np.float32)
        if len(vb):
            iou = box_iou(keep, vb)
            per_view[:, k] = np.where(iou >= 0.4, vs[None, :], 0).max(1)
    return keep, per_view


def features(rgb: np.ndarray, boxes: np.ndarray, per_view: np.ndarray, use: set[str]) -> np.ndarray:
    h_img, w_img = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = []
    for box, s in zip(boxes, per_view):
        x1, y1, x2, y2 = box
        bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        f = []
        if "scores" in use:
            f += list(s) + list((s > 0).astype(np.float32))
        if "geometry" in use:
            f += [np.log(bh), np.log(bw / bh), (y1 + y2) / 2 / h_img]
        if "hog" in use:
            cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(bw, bh) * 1.2
            M = np.array([[CROP / side, 0, CROP / 2 - cx * CROP / side], [0, CROP / side, CROP / 2 - cy * CROP / side]], np.float32)
            crop = cv2.warpAffine(grey, M, (CROP, CROP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            f += list(hog(crop.astype(np.float32)))
        out.append(f)
    out = np.array(out, np.float32).reshape(len(boxes), -1)
    if "mtcnn" in use and len(boxes):
        out = np.hstack([out, mtcnn_scores(rgb, boxes)])
    return out


_MTCNN = None


def mtcnn_scores(rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """MTCNN's own face/not-face judgement of each candidate: R-Net (24 px) and O-Net (48 px)
    face probabilities on its square box, and O-Net's again on the box O-Net itself refines."""
    global _MTCNN
    from faceanon.detect.mtcnn import MTCNNDetector, _regress, box_crops, square_boxes

    if _MTCNN is None:
        _MTCNN = MTCNNDetector()
    sq = square_boxes(boxes.astype(np.float32))
    _, r_prob = _MTCNN._rnet.run(None, {"input_2": box_crops(rgb, sq, 24).transpose(0, 2, 1, 3)})
    reg, _, o_prob = _MTCNN._onet.run(None, {"input_3": box_crops(rgb, sq, 48).transpose(0, 2, 1, 3)})
    refined = square_boxes(_regress(sq, reg))
    _, _, o2_prob = _MTCNN._onet.run(None, {"input_3": box_crops(rgb, refined, 48).transpose(0, 2, 1, 3)})
    p = np.clip(np.stack([r_prob[:, 1], o_prob[:, 1], o2_prob[:, 1]], 1), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).astype(np.float32)


def crops(rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 3, CROP, CROP) float crops of the candidates (box grown 1.2x, square), in [0, 1]."""
    out = np.zeros((len(boxes), 3, CROP, CROP), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1, 1.0) * 1.2
        M = np.array([[CROP / side, 0, CROP / 2 - cx * CROP / side], [0, CROP / side, CROP / 2 - cy * CROP / side]], np.float32)
        out[i] = cv2.warpAffine(rgb, M, (CROP, CROP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE).transpose(2, 0, 1) / 255
    return out


def train_cnn(pixels: np.ndarray, x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 12):
    """A small CNN on the crops, its last layer also fed the candidate's scalar features."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Sequential(nn.Linear(64 + x.shape[1], 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, img, feat):
            return self.head(torch.cat([self.conv(img), feat], 1))[:, 0]

    net = Net()
    opt = torch.optim.Adam(net.parameters(), 2e-3, weight_decay=1e-4)
    img, feat = torch.from_numpy(pixels), torch.from_numpy(((x - mu) / sd).astype(np.float32))
    target = torch.from_numpy(y.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(128):
            flip = torch.rand(len(idx), generator=gen) < 0.5  # mirrored faces are faces
            batch = torch.where(flip[:, None, None, None], img[idx].flip(3), img[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(net(batch, feat[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def score(p: np.ndarray, f: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(net(torch.from_numpy(p), torch.from_numpy(((f - mu) / sd).astype(np.float32)))).numpy()
    return score


def coverage(ann: dict, photos: list[str], boxes: dict, keep: dict) -> tuple[float, float, float]:
    """(coverage of faces 16 px up, of faces 8-16 px, precision) of the kept candidates."""
    total = np.zeros(4)
    tp = n = 0
    for rel in photos:
        b = boxes[rel][keep[rel]]
        total += score_photo(ann[rel], b)[:4]
        gt = np.array(ann[rel]["boxes_xywh"], np.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        tp += int(on_face(b, gt).sum())
        n += len(b)
    return total[0] / max(total[1], 1), total[2] / max(total[3], 1), tp / max(n, 1)


def false_sheet(root: Path, names, boxes, labels, score, keep, dst: Path) -> None:
    items = [(score[r][i], r, boxes[r][i]) for r in names for i in range(len(boxes[r]))
             if keep[r][i] and not labels[r][i] and boxes[r][i][3] - boxes[r][i][1] >= 16]
    items.sort(key=lambda t: -t[0])
    tiles = []
    for s, r, b in items[:64]:
        rgb = read_image(root / "images" / r).rgb
        x1, y1, x2, y2 = b.astype(int)
        m = (x2 - x1) // 2
        crop = rgb[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m]
        tile = cv2.resize(crop, (96, 96))
        cv2.putText(tile, f"{s:.2f}", (2, 10), 0, 0.35, (255, 255, 0), 1)
        tiles.append(tile)
    while len(tiles) % 8:
        tiles.append(np.zeros((96, 96, 3), np.uint8))
    sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
    cv2.imwrite(str(dst), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    ap.add_argument("--target", type=float, default=0.98)
    ap.add_argument("--features", default="scores,geometry,hog")
    ap.add_argument("--views", default=",".join(f"{v}:{t}" for v, t in VIEWS.items()),
                    help="candidate views and their score floors, VIEW:FLOOR,... (cached by detector_search.py)")
    ap.add_argument("--model", choices=["logistic", "cnn"], default="logistic",
                    help="cnn: a small CNN on 32 px crops plus the scalar features (needs torch)")
    ap.add_argument("--on-face", choices=["iou", "centre"], default="iou", help="what counts as a detection on a face")
    ap.add_argument("--suffix", default="", help="appended to the result file's name")
    ap.add_argument("--sheet", help="PNG of the 64 kept candidates of 16 px or more that lie on no annotated face, "
                    "highest verifier score first (are they faces WIDER left unannotated?)")
    args = ap.parse_args()
    global ON_FACE
    ON_FACE = args.on_face
    VIEWS.clear()
    VIEWS.update({v: float(t) for v, t in (item.split(":") for item in args.views.split(","))})
    root = Path(args.data)
    ann = load_annotations(root)
    names = sorted(ann)
    cached = {v: json.loads((CACHE / f"search_{v}.json").read_text()) for v in VIEWS}
    use = set(args.features.split(","))
    boxes, feats, labels, pixels = {}, {}, {}, {}
    for rel in names:
        b, s = candidates(cached, rel)
        boxes[rel] = b
        rgb = read_image(root / "images" / rel).rgb
        feats[rel] = features(rgb, b, s, use)
        if args.model == "cnn":
            pixels[rel] = crops(rgb, b)
        gt = np.array(ann[rel]["boxes_xywh"], np.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        labels[rel] = on_face(b, gt).astype(np.float64)
    fold = {rel: i % FOLDS for i, rel in enumerate(names)}
    held_score = {}
    for k in range(FOLDS):
        train = [r for r in names if fold[r] != k]
        x = np.vstack([feats[r] for r in train])
        y = np.concatenate([labels[r] for r in train])
        if args.model == "cnn":
            score = train_cnn(np.concatenate([pixels[r] for r in train]), x, y, seed=k)
        else:
            model = fit_logistic(x, y)
            score = lambda p, f: predict_logistic(model, f)  # noqa: E731
        for r in names:
            if fold[r] == k:
                held_score[r] = score(pixels.get(r), feats[r]) if len(feats[r]) else np.zeros(0)

    def threshold_for(photos: list[str]) -> float:
        """The highest keep threshold at which ``photos`` stay covered at the target."""
        lo, hi = 0.0, 1.0
        for _ in range(20):
            mid = (lo + hi) / 2
            c16, _, _ = coverage(ann, photos, boxes, {r: held_score[r] >= mid for r in photos})
            lo, hi = (mid, hi) if c16 >= args.target else (lo, mid)
        return lo

    keep = {}
    thresholds = []
    for k in range(FOLDS):
        t = threshold_for([r for r in names if fold[r] != k])
        thresholds.append(round(t, 4))
        keep.update({r: held_score[r] >= t for r in names if fold[r] == k})
    c16, c8, prec = coverage(ann, names, boxes, keep)
    all_c16, all_c8, all_prec = coverage(ann, names, boxes, {r: np.ones(len(boxes[r]), bool) for r in names})
    result = {
        "views": VIEWS, "features": sorted(use), "model": args.model, "on_face": ON_FACE, "target": args.target, "photos": len(names),
        "candidates": int(sum(len(b) for b in boxes.values())),
        "candidates_on_faces": int(sum(labels[r].sum() for r in names)),
        "before_verifier": {"covered_16px_up": round(all_c16, 4), "covered_8_16px": round(all_c8, 4), "precision": round(all_prec, 4)},
        "cross_validated": {"covered_16px_up": round(c16, 4), "covered_8_16px": round(c8, 4), "precision": round(prec, 4),
                            "kept_per_photo": round(sum(int(v.sum()) for v in keep.values()) / len(names), 2)},
        "thresholds_per_fold": thresholds,
    }
    if args.sheet:
        false_sheet(root, names, boxes, labels, held_score, keep, Path(args.sheet))
    (REPO / "bench" / "results" / f"verifier_search{'_cnn' if args.model == 'cnn' else ''}{args.suffix}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
