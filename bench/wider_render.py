"""Where do the identity engines paint new faces on real photos? (issue 15, item 2)

A thin shell over `faceanon evaluate wider --method M` (faceanon/evaluate/wild.py) that runs on
a slice of the photos (first N, or after the first N: thresholds were read on the first 120) and
keeps its results under bench/results/. Every detected face is sorted by what it got (the method
or the fallback filter, with the reason) and by whether it lies on an annotated face; a
synthesized face on none is a new face painted on something that is not a face. With --sheet,
a sheet of every synthesized face of 24 px or more (those on non-faces first) to look at.

    python bench/wider_render.py [--method cfa] [--images N] [--skip N] [--sheet docs/wider_render_cfa.png]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceanon.detect import DEFAULT_DETECTOR  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.evaluate.wild import evaluate_wider_method  # noqa: E402
from faceanon.pipeline import PipelineConfig  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "wider_face_val_subset"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="cfa")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR)
    ap.add_argument("--images", type=int, default=0, help="first N images only (0 = all)")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N images (e.g. those thresholds were read on)")
    ap.add_argument("--sheet", help="PNG sheet of the synthesized faces (24 px or more, and all on non-faces)")
    ap.add_argument("--out", help="results JSON (default bench/results/wider_render_<method>.json)")
    ap.add_argument("--page", help="write the summary into this page's wider-render-default section (docs/render_gate.md)")
    args = ap.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    start = time.perf_counter()
    result = evaluate_wider_method(PipelineConfig(method=args.method, params=params, detector=args.detector),
                                   SHARED, args.images, args.skip, Path(args.sheet) if args.sheet else None)
    # the judge gives no figure (NaN) on a small slice: null in the JSON
    result = {k: None if isinstance(v, float) and v != v else v for k, v in result.items()}
    result["seconds"] = round(time.perf_counter() - start, 1)
    out_path = Path(args.out or REPO / f"bench/results/wider_render_{args.method}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ("non_faces", "renders")}, indent=1))
    if args.page:
        replace_section(Path(args.page), "wider-render-default", summary(result))
    return 0


def summary(result: dict) -> str:
    got = result["got"]
    method = result["method"]
    lines = [f"| detector | photos | detections | `{method}` drawn on an annotated face | on none | blur on an annotated face | on none |",
             "|---|---|---|---|---|---|---|",
             f"| `{result['detector']}` | {result['images']} | {result['faces']} | {got.get(f'{method} on a face', 0)} | "
             f"{got.get(f'{method} on a non-face', 0)} | {got.get('blur on a face', 0)} | {got.get('blur on a non-face', 0)} |",
             "", "Why faces got the blur: " + "; ".join(f"{reason}: {n}" for reason, n in result["fallback_reasons"].items()) + ".",
             "", f"`python bench/wider_render.py --method {method} --page docs/render_gate.md` (\"on none\": IoU < 0.3 with "
             "every annotated box, invalid ones included)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
