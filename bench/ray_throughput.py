"""Images per second of `faceanon anonymize DIR` (default detector + blur) on the WIDER dev
subset: the local engine, and Ray Data with 1 and 2 workers, each run as a fresh command into an
empty folder (start-up included), and whether each Ray run wrote the local run's bytes for every
file and listed every file in its manifest. Writes bench/results/ray_throughput.json and the table of
docs/scale.md.

    python bench/ray_throughput.py [--images DIR] [--workers 1,2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(DEFAULT_DATA / "wider_face_val_subset" / "images"))
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    faceanon = str(Path(sys.executable).parent / "faceanon")
    count = sum(1 for _ in Path(args.images).rglob("*.jpg"))
    runs = [("local", [])] + [(f"ray, {w} worker(s)", ["--engine", "ray", "--workers", w]) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, extra) in enumerate(runs):
            out = Path(tmp) / str(k)
            t = time.perf_counter()
            subprocess.run([faceanon, "anonymize", args.images, "-o", str(out), "-q", *extra], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - t
            row = {"engine": name, "images": count, "seconds": round(seconds, 1), "images_per_second": round(count / seconds, 2)}
            if k:
                local = Path(tmp) / "0"
                outputs = sorted(p.relative_to(local) for p in local.rglob("*.jpg"))
                row["identical_to_local"] = all((out / r).read_bytes() == (local / r).read_bytes() for r in outputs)
                listed = [json.loads(line).get("input") for line in (out / ".faceanon-manifest.jsonl").read_text().splitlines()]
                row["manifest_lists_every_file"] = sorted(x for x in listed if x) == sorted(str(r) for r in outputs)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (REPO / "bench" / "results" / "ray_throughput.json").write_text(
        json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    def yes(v) -> str:
        return "-" if v is None else "yes" if v else "NO"

    table = "\n".join(["| engine | images | seconds (start-up included) | images/s | same bytes as local | manifest lists every file |",
                        "|---|---|---|---|---|---|"]
                       + [f"| {r['engine']} | {r['images']} | {r['seconds']} | {r['images_per_second']} | "
                          f"{yes(r.get('identical_to_local'))} | {yes(r.get('manifest_lists_every_file'))} |" for r in rows])
    table += f"\n\n{os.cpu_count()} CPU cores; `python bench/ray_throughput.py`."
    print(table)
    replace_section(REPO / "docs" / "scale.md", "ray-throughput", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
