"""Photo speed against deface: `faceanon anonymize` (blur, whole command: start-up, decode,
detect, blur, encode) and `deface` on the same 40 WIDER photos of 1024 px, runs alternated
(faceanon, deface, faceanon, ...), the ratio taken run by run and its median kept, so a drift of
the machine's speed hits both. Also each detector's images/s inside one process (detection only)
on the same photos. Writes bench/results/image_speed.json and the table in docs/speed.md.

    python bench/image_speed.py --deface /tmp/deface-venv/bin/deface [--repeat 5] [--detectors default,yunet,...]

`deface` pins opencv-python (OpenCV 5), so it lives in a venv of its own:
    python -m venv /tmp/deface-venv && /tmp/deface-venv/bin/pip install deface==1.5.0
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from video_speed import wall  # noqa: E402

from faceanon.detect import DEFAULT_DETECTOR, create_detector  # noqa: E402
from faceanon.evaluate.coverage import load_annotations  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.io import read_image  # noqa: E402


def pick_photos(root: Path, n: int, dst: Path) -> list[Path]:
    """``n`` WIDER photos (a fixed seeded draw), copied to ``dst`` as 00.jpg, 01.jpg, ..."""
    names = sorted(load_annotations(root))
    random.Random(17).shuffle(names)
    dst.mkdir(parents=True)
    out = []
    for i, rel in enumerate(names[:n]):
        out.append(dst / f"{i:02d}.jpg")
        shutil.copy(root / "images" / rel, out[-1])
    return out


def detector_rate(name: str, photos: list[Path]) -> float:
    """Images/s of one detector on decoded photos (one warm-up photo first)."""
    det = create_detector(name)
    pixels = [read_image(p).rgb for p in photos]
    det.detect(pixels[0])
    t = time.perf_counter()
    for rgb in pixels:
        det.detect(rgb)
    return len(pixels) / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA / "wider_face_val_subset"))
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--deface", help="the deface command (its own venv)")
    ap.add_argument("--detectors", default=f"{DEFAULT_DETECTOR},yunet,centerface,ensemble",
                    help="detectors timed in-process, and run through the command line against deface")
    args = ap.parse_args()
    faceanon = str(Path(sys.executable).parent / "faceanon")
    detectors = list(dict.fromkeys(args.detectors.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = pick_photos(Path(args.data), args.photos, Path(tmp) / "in")
        for name in detectors:
            rate = detector_rate(name, photos)
            row = {"detector": name, "detect_images_per_s": round(rate, 1)}
            ours = [faceanon, "anonymize", str(Path(tmp) / "in"), "-o", str(Path(tmp) / "out"), "--method", "blur",
                    "--detector", name, "--redo", "--quiet"]
            copy = Path(tmp) / "deface_in"

            def theirs() -> float:
                # deface writes NAME_anonymized.jpg beside each input: a fresh copy each run, not timed.
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(Path(tmp) / "in", copy)
                return wall([args.deface, *map(str, sorted(copy.glob("*.jpg")))])

            wall(ours)  # warm-up (file cache, model load)
            if args.deface:
                theirs()
            a, b = [], []
            for _ in range(args.repeat):
                a.append(wall(ours))
                if args.deface:
                    b.append(theirs())
            row.update({"wall_s": round(statistics.median(a), 2), "images_per_s": round(len(photos) / statistics.median(a), 1)})
            if b:
                row.update({"deface_wall_s": round(statistics.median(b), 2),
                            "deface_images_per_s": round(len(photos) / statistics.median(b), 1),
                            "time_ratio_vs_deface": round(statistics.median(x / y for x, y in zip(a, b)), 3)})
            print(json.dumps(row), flush=True)
            rows.append(row)
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    (REPO / "bench" / "results" / "image_speed.json").write_text(json.dumps(
        {"machine": machine, "photos": len(photos), "repeat": args.repeat, "rows": rows}, indent=2) + "\n")
    lines = ["| detector (`--method blur`) | detection only, images/s | whole command, images/s | deface, images/s | "
             "faceanon's time / deface's |", "|---|---|---|---|---|"]
    for r in rows:
        label = f"`{r['detector']}`" + (" (default)" if r["detector"] == DEFAULT_DETECTOR else "")
        lines.append(f"| {label} | {r['detect_images_per_s']} | {r['images_per_s']} | {r.get('deface_images_per_s', '-')} | "
                     f"{r.get('time_ratio_vs_deface', '-')} |")
    table = "\n".join(lines) + (f"\n\n{len(photos)} WIDER photos of 1024 px, {machine}; whole commands (start-up included), "
                                f"{args.repeat} alternated runs each, medians; `python bench/image_speed.py --deface DEFACE`.")
    print(table)
    if args.deface:
        replace_section(REPO / "docs" / "speed.md", "image-speed", table)
        replace_section(REPO / "README.md", "detection-summary", readme_table(rows))
    return 0


def readme_table(rows: list[dict]) -> str:
    """The README's detection figures: WIDER coverage and precision (bench/wider_coverage.py's
    results) beside this run's speed against deface."""
    coverage = json.loads((REPO / "bench" / "results" / "wider_coverage.json").read_text())
    lines = ["| detector | WIDER faces covered, h >= 16 px / 8-16 px | precision | images/s (`blur`, whole command) | time / deface's |",
             "|---|---|---|---|---|"]
    for r in rows:
        c = coverage.get(r["detector"])
        if c is None or "time_ratio_vs_deface" not in r:
            continue
        label = f"`{r['detector']}`" + (" (default)" if r["detector"] == DEFAULT_DETECTOR else "")
        small = c["coverage"].get("h8-16", {}).get("covered")
        lines.append(f"| {label} | {c['coverage']['all']['covered']:.3f} / {small if small is None else f'{small:.3f}'} | "
                     f"{c['precision_iou0.3']:.2f} | {r['images_per_s']} | {r['time_ratio_vs_deface']:.2f} |")
    ref = coverage.get("deface-reference")
    if ref and rows and "deface_images_per_s" in rows[0]:
        small = ref["coverage"].get("h8-16", {}).get("covered")
        lines.append(f"| deface 1.5.0 | {ref['coverage']['all']['covered']:.3f} / {small if small is None else f'{small:.3f}'} | "
                     f"{ref['precision_iou0.3']:.2f} | {statistics.median(r['deface_images_per_s'] for r in rows)} | 1 |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
