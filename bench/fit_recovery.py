"""How well does `fit` come back, and how little does a wrong password give away?

For same-identity pairs (a, b) of pairs_dev, b is anonymized with `faceanon anonymize --method
fit --password P` into a JPEG of quality 95 (the inputs are JPEGs, so outputs are too) and
restored with `faceanon deanonymize` (the CLI, on files), in three ways:

- right password, on the file as written (payload appended);
- right password after the anonymized JPEG was re-encoded at quality 95 by another program
  (Pillow), which drops the payload: the image-only inverse;
- wrong passwords (several), on the JPEG with its payload.

Each result is compared with the original b (whole-image SSIM) and matched against a with SFace
and dlib at the FAR 1e-3 thresholds of `faceanon evaluate` (TPR). Writes
bench/results/fit_recovery.json and refreshes its table in docs/.

    python bench/fit_recovery.py [--limit 300] [--datasets lfw,celeba] [--wrong 3] [--table-only]
    python bench/fit_recovery.py --method fit-net   # the trained FIT network (image-only inverse)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.cli import main as cli  # noqa: E402
from faceanon.evaluate import metrics  # noqa: E402
from faceanon.evaluate.datasets import load_dataset  # noqa: E402
from faceanon.evaluate.protocol import RECOGNIZERS, Evaluator  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.models.recognizers import recognizer  # noqa: E402

PASSWORD = "correct horse battery staple"


def score(ev: Evaluator, pairs, folder: Path, originals: dict) -> dict:
    ssims, sims = [], {r: [] for r in RECOGNIZERS}
    for a, b in pairs:
        out = read_image(folder / b).rgb
        ssims.append(metrics.ssim(originals[b], out))
        for rec in RECOGNIZERS:
            e = recognizer(rec).embed(out, ev.cache.entries[b].face)
            sims[rec].append(float(e @ getattr(ev.cache.entries[a], rec)))
    res = {"ssim": float(np.mean(ssims)), "ssim_min": float(np.min(ssims))}
    for rec in RECOGNIZERS:
        res[f"tpr_{rec}"] = metrics.accept_rate(sims[rec], ev.gallery.thresholds[rec])
    return res


def run(dataset: str, limit: int, wrong: int, work: Path, method: str = "fit") -> dict:
    ev = Evaluator(load_dataset(dataset), REPO / "report" / "cache", progress=False)
    pairs = ev.pairs(limit)
    probes = sorted({b for _, b in pairs})
    root = ev.dataset.images
    lst = work / f"{dataset}.txt"
    lst.write_text("\n".join(probes) + "\n")
    # What the original looks like as stored (greyscale LFW stays greyscale).
    originals = {b: read_image(root / b).rgb for b in probes}
    q = ["-q"]
    anon = {"jpg": work / f"{dataset}_anon_jpg"}
    cli(["anonymize", str(root), "-o", str(anon["jpg"]), "--files-from", str(lst), "--method", method, "--password",
         PASSWORD] + q)
    how = ["--method", method]
    results = {"pairs": len(pairs), "password": "fixed test phrase",
               "originals": {"ssim": 1.0, **{f"tpr_{rec}": metrics.accept_rate(
                   [float(getattr(ev.cache.entries[a], rec) @ getattr(ev.cache.entries[b], rec)) for a, b in pairs],
                   ev.gallery.thresholds[rec]) for rec in RECOGNIZERS}}}
    results["anonymized"] = score(ev, pairs, anon["jpg"], originals)
    right = work / f"{dataset}_right_jpg"
    cli(["deanonymize", str(anon["jpg"]), "-o", str(right), "--password", PASSWORD] + how + q)
    results["right_password_jpeg95"] = score(ev, pairs, right, originals)
    # Re-encoded by another program: the payload is gone, only the pixels remain.
    reenc = work / f"{dataset}_reencoded"
    for b in probes:
        (reenc / b).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(anon["jpg"] / b) as im:
            im.save(reenc / b, quality=95)
    back = work / f"{dataset}_right_reencoded"
    cli(["deanonymize", str(reenc), "-o", str(back), "--password", PASSWORD] + how + q)
    results["right_password_reencoded_image_only"] = score(ev, pairs, back, originals)
    wrong_scores = []
    for k in range(wrong):
        w = work / f"{dataset}_wrong{k}"
        cli(["deanonymize", str(anon["jpg"]), "-o", str(w), "--password", f"guess {k}"] + how + q)
        wrong_scores.append(score(ev, pairs, w, originals))
    results["wrong_passwords"] = {key: float(np.mean([s[key] for s in wrong_scores])) for key in wrong_scores[0]}
    results["wrong_passwords"]["count"] = wrong
    return results


def table(all_results: dict, method: str = "fit") -> str:
    as_written = "right password, JPEG 95 with payload" if method == "fit" else "right password, JPEG 95 (no payload is written)"
    rows = [("originals (untouched)", "originals"), ("anonymized (JPEG 95)", "anonymized"), (as_written, "right_password_jpeg95"),
            ("right password, re-encoded (payload lost): image-only inverse", "right_password_reencoded_image_only"),
            ("wrong passwords (mean of several)", "wrong_passwords")]
    lines = [f"| `{method}` output | " + " | ".join(f"{d} SSIM | {d} TPR SFace / dlib" for d in all_results) + " |",
             "|---|" + "---|---|" * len(all_results)]
    for label, key in rows:
        cells = []
        for d, r in all_results.items():
            s = r[key]
            cells.append(f"{s['ssim']:.3f} | {s['tpr_sface']:.3f} / {s['tpr_dlib']:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = ", ".join(f"{d} {r['pairs']} pairs" for d, r in all_results.items())
    how = "" if method == "fit" else f" --method {method}"
    lines.append(f"\n{n} of pairs_dev; regenerate with `python bench/fit_recovery.py{how}`.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="lfw,celeba")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--wrong", type=int, default=3)
    ap.add_argument("--method", default="fit", choices=["fit", "fit-net"])
    ap.add_argument("--out", help="default bench/results/<method>_recovery.json")
    ap.add_argument("--page", help="the page whose table is refreshed (default docs/identity.md for fit, "
                    "docs/networks.md for fit-net; '' = none)")
    ap.add_argument("--table-only", action="store_true", help="refresh the page's table from --out, measure nothing")
    args = ap.parse_args()
    args.out = args.out or str(REPO / f"bench/results/{args.method.replace('-', '_')}_recovery.json")
    section = f"{args.method}-recovery"
    if args.page is None:
        args.page = str(REPO / "docs" / ("identity.md" if args.method == "fit" else "networks.md"))
    if args.table_only:
        text = table(json.loads(Path(args.out).read_text()), args.method)
        print(text)
        if args.page:
            replace_section(Path(args.page), section, text)
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="fit_recovery_") as tmp:
        for dataset in [d for d in args.datasets.split(",") if d]:
            results[dataset] = run(dataset, args.limit, args.wrong, Path(tmp), args.method)
            print(json.dumps({dataset: results[dataset]}), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    text = table(results, args.method)
    print(text)
    if args.page:
        replace_section(Path(args.page), section, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
