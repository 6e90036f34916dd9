"""Video speed: frames per second of `faceanon anonymize` (the whole command: start-up, both
passes, encoding, audio) for `blur` and `cfa` on a real 640x360 clip and on the same clip
scaled to 1920x1080, against `deface` on the same files when its command is given. Runs
alternate (faceanon, deface, faceanon, ...) and the medians are kept, so a drift of the
machine's speed hits both. Writes bench/results/video_speed.json.

    python bench/video_speed.py [--clip CLIP] [--repeat 3] [--deface /path/to/deface]
                                [--detector yunet] [--sizes 640x360]

Rows are kept per (clip size, method, detector): a run with --detector or --sizes replaces its
own rows in bench/results/video_speed.json and keeps the others.

`deface` pins opencv-python (OpenCV 5), so it lives in a venv of its own:
    python -m venv /tmp/deface-venv && /tmp/deface-venv/bin/pip install deface==1.5.0
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from faceanon.detect import DEFAULT_DETECTOR  # noqa: E402
from faceanon.evaluate.datasets import DEFAULT_DATA  # noqa: E402
from faceanon.evaluate.readme import replace_section  # noqa: E402
from faceanon.io.video import probe  # noqa: E402


def scaled_copy(src: Path, dst: Path, width: int, height: int) -> None:
    """The clip resized (frames and audio kept), with PyAV."""
    import av
    import cv2

    from faceanon.io.video import read_frames

    with av.open(str(src)) as inp:
        rate = inp.streams.video[0].average_rate
        audio = inp.streams.audio[0] if inp.streams.audio else None
        out = av.open(str(dst), "w")
        v = out.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"crf": "18", "preset": "veryfast"}
        a = out.add_stream_from_template(audio) if audio is not None else None
        for frame in read_frames(src):
            big = cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC)
            for p in v.encode(av.VideoFrame.from_ndarray(big, format="rgb24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            for packet in inp.demux(audio):
                if packet.dts is not None:
                    packet.stream = a
                    out.mux(packet)
        out.close()


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(DEFAULT_DATA / "video" / "hamilton.mp4"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default="blur,cfa")
    ap.add_argument("--deface", help="the deface command (its own venv)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR)
    ap.add_argument("--sizes", default="640x360,1920x1080")
    args = ap.parse_args()
    sizes = args.sizes.split(",")
    faceanon = str(Path(sys.executable).parent / "faceanon")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"640x360": Path(args.clip)}
        if "1920x1080" in sizes:
            big = Path(tmp) / "clip_1080p.mp4"
            scaled_copy(Path(args.clip), big, 1920, 1080)
            clips["1920x1080"] = big
        for size, clip in ((k, v) for k, v in clips.items() if k in sizes):
            info = probe(clip)
            frames = info.frames or 0
            seconds_of_video = frames / info.fps
            for method in args.methods.split(","):
                ours = [faceanon, "anonymize", str(clip), "-o", str(Path(tmp) / f"out_{method}.mp4"), "--method", method,
                        "--detector", args.detector, "--quiet"]
                theirs = [args.deface, str(clip), "-o", str(Path(tmp) / "deface.mp4"), "--keep-audio"] if args.deface and method == "blur" else None
                wall(ours)  # warm-up (file cache, model load)
                a, b = [], []
                for _ in range(args.repeat):
                    a.append(wall(ours))
                    if theirs:
                        b.append(wall(theirs))
                row = {"clip": size, "frames": frames, "method": method, "detector": args.detector, "wall_s": round(statistics.median(a), 2),
                       "fps": round(frames / statistics.median(a), 1),
                       "real_time_factor": round(seconds_of_video / statistics.median(a), 2)}
                if b:
                    row.update({"deface_wall_s": round(statistics.median(b), 2), "deface_fps": round(frames / statistics.median(b), 1),
                                "time_ratio_vs_deface": round(statistics.median(x / y for x, y in zip(a, b)), 3)})
                print(json.dumps(row), flush=True)
                results.append(row)
    out = REPO / "bench" / "results" / "video_speed.json"
    key = lambda r: (r["clip"], r["method"], r.get("detector", "yunet"))  # noqa: E731 - rows before the key had yunet
    measured = {key(r) for r in results}
    kept = [r for r in (json.loads(out.read_text())["rows"] if out.exists() else []) if key(r) not in measured]
    results = sorted(kept + results, key=lambda r: (r["clip"] != "640x360", r.get("detector", "yunet") != DEFAULT_DETECTOR,
                                                   r["method"]))
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
                               "repeat": args.repeat, "rows": results}, indent=2) + "\n")
    lines = ["| clip | method | detector | frames/s | x real time | deface frames/s | faceanon's time / deface's |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['clip']} | `{r['method']}` | `{r.get('detector', 'yunet')}` | {r['fps']} | {r['real_time_factor']} | "
                     f"{r.get('deface_fps', '-')} | {r.get('time_ratio_vs_deface', '-')} |")
    table = "\n".join(lines) + f"\n\n{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}; {args.repeat} runs each, medians."
    print(table)
    if args.deface:
        replace_section(REPO / "docs" / "video.md", "video-speed-table", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
