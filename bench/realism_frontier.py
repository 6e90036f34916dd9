"""The realism-privacy frontier of every renderer variant tried (issue 15): judge accuracy (C2ST)
against TPR at FAR 1e-3, from bench/results/realism_variants_celeba.json (written by
bench/experiments/realism_variants.py). Prints a markdown table and writes the plot.

    python bench/realism_frontier.py [--out docs/realism_frontier.png]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench/results/realism_variants_celeba.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs/realism_frontier.png"))
    args = ap.parse_args()
    runs = json.loads(RESULTS.read_text())
    # "drawn": new faces the variant drew in the judged photos, against the number of photos (a
    # CelebA crop holds one face, rarely two); the others got the fallback blur, which the judge
    # sees too. Rows written before the pipeline had a recognizer gate drew on all it could
    print("| variant | C2ST (95 %) | TPR SFace / dlib | SFace similarity to the same photo | drawn |")
    print("|---|---|---|---|---|")
    for name, r in sorted(runs.items(), key=lambda kv: kv[1]["c2st"]):
        drawn = f"{r['rendered']} / {r.get('of', 300)}{' (gate)' if r.get('gate') else ''}" if name != "original" else "-"
        print(f"| `{name}` | {r['c2st']:.2f} ({r['ci'][0]:.2f}-{r['ci'][1]:.2f}) | {r['tpr_sface']:.3f} / "
              f"{r['tpr_dlib']:.3f} | {r['sface_self_sim']:.2f} | {drawn} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
    for name, r in runs.items():
        ax.errorbar(r["c2st"], r["tpr_sface"], xerr=[[r["c2st"] - r["ci"][0]], [r["ci"][1] - r["c2st"]]],
                    fmt="o", c="C0", alpha=0.8, capsize=2)
        ax.scatter(r["c2st"], r["tpr_dlib"], marker="s", c="C1")
        ax.annotate(name, (r["c2st"], r["tpr_sface"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axvline(0.6, ls="--", c="grey", lw=0.8)
    ax.axhline(0.02, ls="--", c="grey", lw=0.8)
    ax.text(0.505, 0.03, "target: C2ST <= 0.6, TPR <= 0.02", fontsize=7, color="grey")
    ax.scatter([], [], marker="o", c="C0", label="TPR SFace")
    ax.scatter([], [], marker="s", c="C1", label="TPR dlib")
    ax.set_xlabel("C2ST judge accuracy (0.5 = passes for real)")
    ax.set_ylabel("TPR at FAR 1e-3 (privacy, lower is better)")
    ax.set_title("renderer variants on CelebA dev (same people, same judge)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"\nplot: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
