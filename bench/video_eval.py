"""`faceanon evaluate video` on the dev clip and on clips made from real footage, for `blur`
and `cfa` at their defaults. Writes bench/results/video_eval.json, prints the table of
docs/video.md (and writes it there after a run of every default clip and run) and saves a before/after sheet of frames per clip and method (bench/results/
video_sheets/, not in git) to look at.

The clips (made in a temporary folder from ../shared, never shipped):
* ``hamilton``: the dev clip (640x360, 275 frames, 4 shots, with sound);
* ``hamilton_occluded``: the same, where for 6 frames out of every 45 a skin-coloured blob
  (a hand passing) covers the left part of every face: the detector loses faces for a few
  frames and the tracks must bridge them;
* ``wider_pan``: a slow zoom and pan over 4 WIDER dev photos of groups (80 frames each, cuts
  between them): many real faces, small ones, moving with the camera.

Each run is ``METHOD[@DETECTOR]`` (default detector: the pipeline's). The reference detector
that judges a run is never a part of its detector (CenterFace, else MTCNN).

    python bench/video_eval.py [--runs blur,cfa,blur@yunet,cfa@yunet] [--clips hamilton,hamilton_occluded,wider_pan]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import create_detector  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.evaluate.video import evaluate_clip  # noqa: E402
from faceanon.io import read_image  # noqa: E402
from faceanon.io.video import read_frames, write_frames, probe  # noqa: E402
from faceanon.pipeline import PipelineConfig  # noqa: E402

DEV_CLIP = DEFAULT_DATA / "video" / "hamilton.mp4"
DEFAULT_RUNS = "blur,cfa,blur@yunet,cfa@yunet"
DEFAULT_CLIPS = "hamilton,hamilton_occluded,wider_pan"
# Group photos of the WIDER dev subset with several faces of 20 px and more.
PAN_PHOTOS = 4
PAN_FRAMES = 80


def occluded_clip(src: Path, dst: Path) -> None:
    detector = create_detector("yunet")
    rng = np.random.default_rng(0)
    frames = []
    for i, frame in enumerate(read_frames(src)):
        frame = frame.copy()
        if i % 45 in range(20, 26):
            for face in detector(frame):
                x1, y1, x2, y2 = face.box
                w, h = x2 - x1, y2 - y1
                centre = (int(x1 + 0.3 * w), int(y1 + 0.55 * h))
                axes = (max(2, int(0.4 * w)), max(2, int(0.45 * h)))
                blob = np.zeros(frame.shape[:2], np.uint8)
                cv2.ellipse(blob, centre, axes, 20, 0, 360, 1, -1)
                skin = np.clip(np.array([190, 140, 115]) + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
                frame[blob > 0] = skin[blob > 0]
        frames.append(frame)
    write_frames(dst, frames, fps=probe(src).fps)


def pan_clip(dst: Path) -> list[np.ndarray]:
    """Zoom from the whole photo to 70 % of it around its faces, over PAN_FRAMES frames each.
    Returns the annotated faces of every frame (x1, y1, x2, y2), moved with the view."""
    root = DEFAULT_DATA / "wider_face_val_subset"
    annotations = json.loads((root / "annotations.json").read_text())
    chosen = [name for name, a in sorted(annotations.items())
              if 3 <= sum(h >= 20 for _, _, _, h in a["boxes_xywh"]) <= 15]
    step = max(1, len(chosen) // PAN_PHOTOS)
    frames, truth = [], []
    for name in chosen[::step][:PAN_PHOTOS]:
        rgb = read_image(root / "images" / name).rgb
        h, w = rgb.shape[:2]
        boxes = np.array(annotations[name]["boxes_xywh"], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        for t in np.linspace(0, 1, PAN_FRAMES):
            s = 1 - 0.3 * t
            cw, ch = w * s, h * s
            x0, y0 = (w - cw) * t, (h - ch) * 0.5 * t
            view = rgb[int(y0) : int(y0 + ch), int(x0) : int(x0 + cw)]
            frames.append(cv2.resize(view, (960, 540), interpolation=cv2.INTER_AREA))
            sx, sy = 960 / view.shape[1], 540 / view.shape[0]
            truth.append((boxes - [int(x0), int(y0), int(x0), int(y0)]) * [sx, sy, sx, sy])
    write_frames(dst, frames, fps=25)
    return truth


def sheet(original: Path, anonymized: Path, dst: Path, picks: int = 6) -> None:
    a, b = list(read_frames(original)), list(read_frames(anonymized))
    idx = np.linspace(0, len(a) - 1, picks).astype(int)
    rows = [np.hstack([cv2.resize(a[i], (480, 270)), cv2.resize(b[i], (480, 270))]) for i in idx]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


COLUMNS = [("clip", "clip"), ("method", "method"), ("detector", "detector"), ("reference_detector", "judged against"),
           ("leak", "leak"), ("leaks_by_attack", "leaks by attack, aligned / forehead"),
           ("leaks_on_faces_the_run_missed", "leaks on faces the run missed"),
           ("leaks_on_unconfirmed_faces", "of them on faces MMOD does not confirm"),
           ("on_another_head", "set apart: boxes on a bigger face's crown"),
           ("not_annotated", "set apart: on no annotated face"), ("uncovered", "uncovered faces"),
           ("lit_faces", "lit faces"), ("painted", "drawn by the method"), ("consistency_ratio", "identity consistency"),
           ("consistency_ratio_steady", "the same, fades left out"),
           ("flicker_ratio", "flicker"), ("frames_per_second", "frames/s"), ("kept", "frames / fps / audio kept")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="METHOD[@DETECTOR],...")
    ap.add_argument("--clips", default=DEFAULT_CLIPS)
    ap.add_argument("--keep", help="keep the clips made and the anonymized ones in this folder")
    ap.add_argument("--table-only", action="store_true", help="write the table from bench/results/video_eval.json, measure nothing")
    ap.add_argument("--merge", action="store_true",
                    help="replace only the rows measured now in bench/results/video_eval.json (a changed method "
                         "re-measured); the docs' table is refreshed when every default row is there")
    args = ap.parse_args()
    results = REPO / "bench" / "results" / "video_eval.json"
    if args.table_only:
        write_table(json.loads(results.read_text()), to_docs=True)
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(args.keep or tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        # a clip made from annotated photos returns its faces (the judge sets apart reference
        # detections on none of them: knees, hair); the others return None
        makers = {"hamilton": lambda p: None, "hamilton_occluded": lambda p: occluded_clip(DEV_CLIP, p),
                  "wider_pan": pan_clip}
        for name in args.clips.split(","):
            clip = DEV_CLIP if name == "hamilton" else tmp / f"{name}.mp4"
            truth = makers[name](clip)
            for run in args.runs.split(","):
                method, _, detector = run.partition("@")
                config = PipelineConfig(method=method, **({"detector": detector} if detector else {}))
                tag = f"{name}_{method}" + (f"_{detector}" if detector else "")
                out = tmp / f"{tag}.mp4"
                r = evaluate_clip(clip, config, out, truth=truth)
                r["clip"] = name
                r["kept"] = (r["frames_in"] == r["frames_out"] and abs(r["fps_in"] - r["fps_out"]) < 0.01
                             and r["audio_in"] == r["audio_out"])
                print(json.dumps(r), flush=True)
                rows.append(r)
                sheet(clip, out, REPO / "bench" / "results" / "video_sheets" / f"{tag}.png")
    defaults = args.clips == DEFAULT_CLIPS and args.runs == DEFAULT_RUNS
    if args.merge and results.exists():
        rows = merged(json.loads(results.read_text()), rows)
        defaults = {row_key(r) for r in rows} >= default_keys()
    results.write_text(json.dumps(rows, indent=2) + "\n")
    write_table(rows, to_docs=defaults)
    return 0


def row_key(r: dict) -> tuple[str, str, str]:
    return r["clip"], r["method"], r["detector"]


def default_keys() -> set[tuple[str, str, str]]:
    keys = set()
    for clip in DEFAULT_CLIPS.split(","):
        for run in DEFAULT_RUNS.split(","):
            method, _, detector = run.partition("@")
            keys.add((clip, method, detector or PipelineConfig().detector))
    return keys


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with the rows of the same clip, method and detector as one of ``new`` replaced,
    in the table's order (clips, then runs as DEFAULT_RUNS lists them); new rows added at the end."""
    fresh = {row_key(r): r for r in new}
    out = [fresh.pop(row_key(r), r) for r in old]
    return out + list(fresh.values())


def write_table(rows: list[dict], to_docs: bool) -> None:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [r["clip"], f"`{r['method']}`", f"`{r['detector']}`", r["reference_detector"]]
        cells += [_cell(r, k) for k, _ in COLUMNS[4:]]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if to_docs:
        replace_section(REPO / "docs" / "video.md", "video-eval-table", table)
        replace_section(REPO / "README.md", "video-summary", readme_table(rows))


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    if isinstance(value, dict):  # leaks_by_attack: a face both attacks find counts in both
        return " / ".join(str(v) for v in value.values())
    return "-" if value is None else "yes" if value is True else "no" if value is False else str(value)


def _consistency(row: dict) -> str:
    steady = row.get("consistency_ratio_steady")
    return f"{row['consistency_ratio']}" + (f" ({steady})" if steady is not None else "")


def readme_table(rows: list[dict]) -> str:
    """The README's few video figures: each clip with the default detector."""
    lines = ["| clip (default detector) | method | leak | faces left uncovered | identity consistency (fades left out) | flicker |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r["detector"] == PipelineConfig().detector:
            lines.append(f"| {r['clip']} | `{r['method']}` | {r['leak']} | {r['uncovered']} of {r['lit_faces']} | "
                         f"{_consistency(r) if r['method'] != 'blur' else '-'} | {r['flicker_ratio']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
