"""Orchestration of `faceanon evaluate`: one method on one dataset, or every method."""
from __future__ import annotations

import json
import sys
import time
from functools import lru_cache
from pathlib import Path

from ..anonymize import ANONYMIZERS
from ..pipeline import Pipeline, PipelineConfig
from . import report
from .datasets import load_dataset
from .protocol import Evaluator, _clean
from .readme import replace_section

DATASETS = ("lfw", "celeba")
# The reference row: images left as they are. Not a registered method (a privacy tool should not
# offer "do nothing"), only a run name the evaluation knows.
ORIGINAL = "original"
# Password-conditioned methods (fit, fit-net) are evaluated under this one password unless the
# caller gives theirs: the protocol measures what a user with some password gets.
EVALUATION_PASSWORD = "faceanon-evaluation"


def evaluation_params(method: str, params: dict | None = None) -> dict:
    """``params`` plus the evaluation password for methods that need one and were given none."""
    params = dict(params or {})
    if method != ORIGINAL and "password" in getattr(ANONYMIZERS.get(method), "params", {}):
        params.setdefault("password", EVALUATION_PASSWORD)
    return params


class Unchanged:
    """Stands in for a Pipeline and returns every image untouched (with its faces detected, so
    speed and face counts stay comparable)."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self._pipeline = Pipeline(PipelineConfig(detector=config.detector))

    def anonymize(self, image):
        return image.copy(), self._pipeline.detect(image)


@lru_cache(maxsize=4)
def _evaluator(name: str, images: str | None, pairs: str | None, cache_dir: str, progress: bool) -> Evaluator:
    return Evaluator(load_dataset(name, images, pairs), Path(cache_dir), progress)


def evaluate_method(dataset: str, config: PipelineConfig, limit: int | None = None, report_dir: Path = Path("report"),
                    images: str | None = None, pairs: str | None = None, curve_pairs: int = 60,
                    progress: bool = True, after: str | None = None) -> dict:
    report_dir = Path(report_dir)
    ev = _evaluator(dataset, images, pairs, str(report_dir / "cache"), progress)
    ev.after = after
    pipeline = Unchanged(config) if config.method == ORIGINAL else Pipeline(config)
    name = report.run_name(config.method, config.params, after)
    t = time.perf_counter()
    summary, _, samples = ev.run(pipeline, limit)
    curve = None
    if curve_pairs > 0 and config.method != ORIGINAL:
        curve = ev.controllability(config, min(curve_pairs, limit or curve_pairs))
    params = {k: v for k, v in config.params.items() if k not in report.SECRET_PARAMS}
    result = {"run": name, "method": config.method, "params": params, "after": after, "detector": config.detector,
              "seed": config.seed, "limit": limit, "summary": summary, "controllability": curve,
              "wall_seconds": round(time.perf_counter() - t, 1)}
    out_dir = report_dir / dataset
    report.write_json(out_dir / f"{name}.json", result)
    report.sample_sheet(out_dir / f"{name}_samples.png", samples, f"{name} on {dataset}: original | anonymized")
    if curve:
        report.curve_plot(out_dir / f"{name}_curve.png", curve, f"{name} on {dataset}")
    report.scatter_plot(report_dir, dataset)
    return result


def evaluate_wider(config: PipelineConfig, root: str | None = None, limit: int | None = None, skip: int = 0,
                   sheet: str | None = None, report_dir: Path = Path("report"), progress: bool = True) -> dict:
    """A method on the WIDER photos (evaluate/wild.py); writes report/wider/<run>.json."""
    from ..errors import UsageError
    from .datasets import DEFAULT_DATA
    from .wild import evaluate_wider_method

    base = Path(root) if root else DEFAULT_DATA / "wider_face_val_subset"
    if not (base / "annotations.json").is_file():
        raise UsageError(f"{base}: no annotations.json (set --images to the WIDER subset folder)")
    if config.method == ORIGINAL:
        raise UsageError("`evaluate wider` needs a method that changes faces; `original` is only a reference row for lfw/celeba")
    Pipeline(config)  # a bad method or parameter fails now
    t = time.perf_counter()
    result = evaluate_wider_method(config, base, limit or 0, skip, Path(sheet) if sheet else None, progress)
    result = {"run": report.run_name(config.method, config.params), "limit": limit, "skip": skip,
              **{k: _clean(v) for k, v in result.items()},
              "wall_seconds": round(time.perf_counter() - t, 1)}
    if not limit and not skip:  # partial runs are not the report's figure
        report.write_json(Path(report_dir) / "wider" / f"{result['run']}.json", result)
    return result


def evaluate_video(config: PipelineConfig, clip: Path, save: Path | None = None, report_dir: Path = Path("report"),
                   progress: bool = True, truth: list | None = None) -> dict:
    """A method on a video clip (evaluate/video.py; ``truth``: its annotated faces per frame, if
    any); writes report/video/<clip>_<run>.json."""
    import sys

    from .video import evaluate_clip

    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else None
    result = evaluate_clip(clip, config, save, progress=say, truth=truth)
    result = {"run": report.run_name(config.method, config.params), **result}
    report.write_json(Path(report_dir) / "video" / f"{Path(clip).stem}_{result['run']}.json", result)
    return result


def evaluate_all(limit: int | None, report_dir: Path, readme: Path | None, datasets=DATASETS, methods=None,
                 progress: bool = True) -> list[dict]:
    results = []
    for method in methods or [ORIGINAL] + ANONYMIZERS.names():
        for dataset in datasets:
            config = PipelineConfig(method=method, params=evaluation_params(method))
            r = evaluate_method(dataset, config, limit, report_dir, progress=progress)
            print(json.dumps({"run": r["run"], "dataset": dataset, **r["summary"]}), flush=True)
            results.append(r)
    if readme is not None:
        refresh_tables(readme, report_dir)
    return results


# The README's short table: these runs, these figures; the full table is in docs/evaluation.md.
SUMMARY_RUNS = (ORIGINAL, "blur", "pixelate", "mask", "adversarial", "cfa", "falco", "fit", "swap")


def refresh_tables(readme: Path, report_dir: Path) -> None:
    """The full results and robustness tables in docs/evaluation.md beside ``readme``, and the
    short table in ``readme``; a page without its markers is an error, not a silent no-op."""
    from ..errors import UsageError

    page = Path(readme).parent / "docs" / "evaluation.md"
    for path, name, body in ((page, "results-table", results_table(report_dir)),
                             (page, "robustness", robustness_table(report_dir)),
                             (Path(readme), "results-summary", summary_table(report_dir))):
        if not path.is_file() or not replace_section(path, name, body):
            raise UsageError(f"{path}: no {name} markers to refresh")


def _default_runs(report_dir: Path) -> dict[str, dict[str, dict]]:
    """run -> dataset -> its JSON, for the runs with default parameters and no degradation."""
    rows: dict[str, dict[str, dict]] = {}
    for dataset in DATASETS:
        for p in sorted((Path(report_dir) / dataset).glob("*.json")):
            data = json.loads(p.read_text())
            if data.get("params") or data.get("after"):
                continue
            rows.setdefault(data["run"], {})[dataset] = data
    return rows


def summary_table(report_dir: Path) -> str:
    """The README's results table: privacy, realism and utility of the main methods."""
    rows = _default_runs(report_dir)
    lines = ["| method | re-identified (TPR at FAR 1e-3), LFW SFace / dlib | CelebA SFace / dlib | "
             "told from real faces (C2ST, 0.5 = never) | still detected (YuNet) | gender kept |",
             "|---|---|---|---|---|---|"]
    for run in SUMMARY_RUNS:
        by = rows.get(run)
        if not by:
            continue
        lfw, cel = by.get("lfw", {}).get("summary", {}), by.get("celeba", {}).get("summary", {})
        s = lfw or cel
        lines.append(f"| `{run}` | {_fmt(lfw.get('tpr_sface'))} / {_fmt(lfw.get('tpr_dlib'))} | "
                     f"{_fmt(cel.get('tpr_sface'))} / {_fmt(cel.get('tpr_dlib'))} | {_fmt(s.get('c2st'), 2)} | "
                     f"{_fmt(s.get('detection_yunet'), 2)} | {_fmt(s.get('gender_kept'), 2)} |")
    return "\n".join(lines)


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _c2st(summary: dict) -> str:
    """Judge accuracy with its 95 % interval, e.g. 0.91 (0.87-0.94); "-" if not measured."""
    if summary.get("c2st") is None:
        return "-"
    return f"{summary['c2st']:.2f} ({summary['c2st_low']:.2f}-{summary['c2st_high']:.2f})"


def results_table(report_dir: Path) -> str:
    """The full results table (docs/evaluation.md) from every default-parameter run in report/."""
    rows = _default_runs(report_dir)
    lines = [
        "| method | pairs LFW / CelebA | LFW TPR SFace / dlib | CelebA TPR SFace / dlib | realism C2ST LFW / CelebA | LFW rank-1 SFace / dlib | "
        "matches someone else SFace / dlib | det. YuNet / MTCNN / HOG | "
        "SSIM (face) | PSNR | FD / real ref. | landmark shift | sharpness | gender kept / age diff | curve monotone |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    originals = None
    for run, by in sorted(rows.items(), key=lambda kv: (kv[0] != ORIGINAL, kv[0])):
        lfw, cel = by.get("lfw", {}).get("summary", {}), by.get("celeba", {}).get("summary", {})
        if originals is None and lfw:
            originals = (lfw.get("tpr_sface_original"), lfw.get("tpr_dlib_original"), cel.get("tpr_sface_original"),
                         cel.get("tpr_dlib_original"), lfw.get("pairs"), cel.get("pairs"))
        curve = by.get("lfw", {}).get("controllability")
        mono = "-" if not curve else ("yes" if curve["monotone_sface"] and curve["monotone_dlib"] else "no")
        s = lfw or cel
        # runs before the 1:N threshold existed scored this against the pairwise one: not shown
        someone_else = (f"{_fmt(s.get('matches_someone_else_sface'), 3)} / {_fmt(s.get('matches_someone_else_dlib'), 3)}"
                        if "search_thresholds" in s else "- / -")
        lines.append(
            f"| `{run}` | {lfw.get('pairs', '-')} / {cel.get('pairs', '-')} | {_fmt(lfw.get('tpr_sface'))} / {_fmt(lfw.get('tpr_dlib'))} | {_fmt(cel.get('tpr_sface'))} / "
            f"{_fmt(cel.get('tpr_dlib'))} | {_c2st(lfw)} / {_c2st(cel)} | {_fmt(lfw.get('rank1_sface'))} / {_fmt(lfw.get('rank1_dlib'))} | "
            f"{someone_else} | "
            f"{_fmt(s.get('detection_yunet'), 2)} / {_fmt(s.get('detection_mtcnn'), 2)} / {_fmt(s.get('detection_dlib-hog'), 2)} | "
            f"{_fmt(s.get('ssim'))} ({_fmt(s.get('face_ssim'))}) | {_fmt(s.get('psnr'), 1)} | "
            f"{_fmt(s.get('frechet_sface'), 3)} / {_fmt(s.get('frechet_sface_real_reference'), 3)} | "
            f"{_fmt(s.get('landmark_shift'))} | {_fmt(s.get('sharpness_ratio'), 2)} | "
            f"{_fmt(s.get('gender_kept'), 2)} / {_fmt(s.get('age_change'), 1)} | {mono} |")
    if originals:
        lines.append(
            f"\nUnanonymized originals: LFW TPR SFace {_fmt(originals[0])} / dlib {_fmt(originals[1])} "
            f"({_fmt(originals[4])} pairs), CelebA TPR SFace {_fmt(originals[2])} / dlib {_fmt(originals[3])} ({_fmt(originals[5])} pairs).")
    lines.append("\nRealism C2ST: held-back accuracy of a small CNN trained to tell anonymized faces from real ones "
                 "(0.5 = cannot be told apart, 1.0 = always; 95 % interval), see docs/realism.md.")
    lines.append("\nColumns other than CelebA TPR are from LFW when it was run. Regenerate with `faceanon evaluate all`; "
                 "rows with fewer pairs were run as `faceanon evaluate lfw --method M --limit N` (pairs spread over the "
                 "folds), for the methods that are slow on this CPU.")
    return "\n".join(lines)


def robustness_table(report_dir: Path, dataset: str = "lfw") -> str:
    """Runs that were also scored after a degradation (``--after``), side by side: does the
    protection survive re-compression and downscaling?"""
    runs = {}
    for p in sorted((Path(report_dir) / dataset).glob("*@*.json")):
        data = json.loads(p.read_text())
        base = data["run"].split("@")[0]
        runs.setdefault(base, {})[data["after"]] = data["summary"]
    lines = ["| run | pairs | SSIM | ID similarity SFace / dlib | TPR SFace / dlib | after JPEG 75: TPR SFace / dlib | "
             "after 0.5x downscale: TPR SFace / dlib |", "|---|---|---|---|---|---|---|"]
    for base, after in sorted(runs.items()):
        plain = Path(report_dir) / dataset / f"{base}.json"
        if not plain.exists():
            continue
        s = json.loads(plain.read_text())["summary"]
        cells = []
        for how in ("jpeg75", "downscale0.5"):
            a = after.get(how)
            cells.append(f"{_fmt(a.get('tpr_sface'))} / {_fmt(a.get('tpr_dlib'))}" if a else "- / -")
        # the degraded runs may have used fewer pairs than the plain one: say so
        other = sorted({a["pairs"] for a in after.values()} - {s["pairs"]})
        pairs = f"{s['pairs']}" + (f" ({', '.join(map(str, other))} degraded)" if other else "")
        lines.append(f"| `{base}` | {pairs} | {_fmt(s.get('ssim'))} | {_fmt(s.get('self_similarity_sface'))} / "
                     f"{_fmt(s.get('self_similarity_dlib'))} | {_fmt(s.get('tpr_sface'))} / {_fmt(s.get('tpr_dlib'))} | "
                     f"{cells[0]} | {cells[1]} |")
    lines.append(f"\n{dataset.upper()} pairs_dev; ID similarity = mean cosine between the original and the anonymized "
                 "photo of the same image. Regenerate with `faceanon evaluate lfw --method M --after jpeg75` etc. and "
                 "`faceanon evaluate table`.")
    return "\n".join(lines)


def print_line(result: dict) -> None:
    print(json.dumps({"run": result["run"], **result["summary"],
                      "controllability": result["controllability"]}), file=sys.stdout, flush=True)
