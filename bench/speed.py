"""Speed of every registered method on this machine, single process.

For each method: images/s and faces/s of the whole pipeline (detect + anonymize + compose)
on LFW images (250x250, one face) and on samples/city.jpg (800x564, ~20 faces), and the
anonymize+compose part alone (faces given). Writes bench/results/speed.json and refreshes the
README's speed table.

    python bench/speed.py [--methods blur,pixelate] [--images 30] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.anonymize import ANONYMIZERS  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402


def timed(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default=",".join(ANONYMIZERS.names()))
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--page", default=str(REPO / "docs" / "speed.md"), help="refresh its table ('' to skip)")
    args = ap.parse_args()
    lfw = sorted((DEFAULT_DATA / "lfw" / "images").rglob("*.jpg"))[:: 97][: args.images]
    lfw_imgs = [read_image(p).rgb for p in lfw]
    city = read_image(REPO / "samples" / "city.jpg").rgb
    out = REPO / "bench/results/speed.json"
    # Runs add to earlier ones (slow methods can be timed on fewer images separately).
    results = json.loads(out.read_text()) if out.exists() else {"methods": {}}
    results["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    probe = Pipeline(PipelineConfig())
    lfw_faces = [probe.detect(im) for im in lfw_imgs]
    city_faces = probe.detect(city)
    required = {"fit": {"password": "benchmark phrase"}}  # methods that cannot run without a parameter
    for method in [m for m in args.methods.split(",") if m]:
        pipe = Pipeline(PipelineConfig(method=method, params=required.get(method, {})))
        pipe.anonymize(lfw_imgs[0])  # warm-up: model loading is not speed
        n_faces = sum(len(f) for f in lfw_faces)
        full = timed(lambda im: pipe.anonymize(im), lfw_imgs, args.repeat)
        only = timed(lambda k: pipe.anonymize(lfw_imgs[k], lfw_faces[k]), range(len(lfw_imgs)), args.repeat)
        city_full = timed(lambda _: pipe.anonymize(city), [0], args.repeat)
        results["methods"][method] = {
            "lfw_images_per_s": len(lfw_imgs) / full, "lfw_faces_per_s": n_faces / full,
            "lfw_anonymize_only_faces_per_s": n_faces / only,
            "city_seconds": city_full, "city_faces": len(city_faces), "images": len(lfw_imgs), "repeat": args.repeat,
        }
        print(method, json.dumps({k: round(v, 2) for k, v in results["methods"][method].items()}), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    lines = ["| method | LFW images/s (detect + anonymize) | faces/s | faces/s, anonymize only | city.jpg s/image |",
             "|---|---|---|---|---|"]
    for m, r in sorted(results["methods"].items()):
        lines.append(f"| `{m}` | {r['lfw_images_per_s']:.1f} | {r['lfw_faces_per_s']:.1f} | "
                     f"{r['lfw_anonymize_only_faces_per_s']:.1f} | {r['city_seconds']:.2f} ({r['city_faces']} faces) |")
    lines.append(f"\nLFW images ({', '.join(sorted({str(r.get('images')) for r in results['methods'].values()}))} per method), "
                 f"best of the runs, one process on {results['machine']}; regenerate with `python bench/speed.py` "
                 "(`--methods fgsm,pgd --images 5` for the slow ones).")
    table = "\n".join(lines)
    print(table)
    if args.page:
        replace_section(Path(args.page), "speed", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
