"""Turn the command line's inputs into jobs: which file to read, where its result goes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .images import IMAGE_EXTENSIONS
from .video import VIDEO_EXTENSIONS

MEDIA_EXTENSIONS = set(IMAGE_EXTENSIONS) | set(VIDEO_EXTENSIONS)


@dataclass
class Job:
    src: Path
    rel: str  # the name used in reports and JSON keys (relative to its root where there is one)
    dst: Path | None = None
    error: str | None = None  # set when the job is refused before it starts

    @property
    def is_video(self) -> bool:
        return self.src.suffix.lower() in VIDEO_EXTENSIONS


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def _read_list(list_path: Path) -> list[str]:
    try:
        lines = Path(list_path).read_text().splitlines()
    except OSError as e:
        raise UsageError(f"{list_path}: cannot read the file list ({e.strerror or e})") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def plan_jobs(inputs: list[str], output: str | None = None, files_from: str | None = None) -> list[Job]:
    """Jobs for ``inputs`` (files and folders, folders searched recursively).

    With one file input, ``output`` may be a file name; otherwise it is a folder and results
    mirror each input's layout below it. ``files_from`` lists paths relative to the single
    input ROOT. A job whose output would be its own input is refused (``error`` set)."""
    if not inputs:
        raise UsageError("no input given")
    jobs: list[Job] = []
    out = Path(output) if output is not None else None
    if files_from is not None:
        if len(inputs) != 1 or not Path(inputs[0]).is_dir():
            raise UsageError("--files-from needs exactly one input: the ROOT folder the listed paths are relative to")
        root = Path(inputs[0])
        for rel in _read_list(Path(files_from)):
            jobs.append(Job(src=root / rel, rel=Path(rel).as_posix(), dst=None if out is None else out / rel))
    else:
        single_file = len(inputs) == 1 and not Path(inputs[0]).is_dir()
        to_file = single_file and out is not None and out.suffix.lower() in MEDIA_EXTENSIONS and not out.is_dir()
        for item in inputs:
            p = Path(item)
            if p.is_dir():
                prefix = Path(p.resolve().name) if len(inputs) > 1 else Path()
                for f in _walk(p):
                    rel = f.relative_to(p)
                    jobs.append(Job(src=f, rel=rel.as_posix(), dst=None if out is None else out / prefix / rel))
            else:
                dst = None if out is None else (out if to_file else out / p.name)
                jobs.append(Job(src=p, rel=p.as_posix() if out is None else p.name, dst=dst))
    if out is not None:
        _refuse_bad_outputs(jobs)
    return jobs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # catches hard links too
    except OSError:
        return False


def _refuse_bad_outputs(jobs: list[Job]) -> None:
    sources = {j.src.resolve() for j in jobs}
    seen: dict[Path, Job] = {}
    for job in jobs:
        dst = job.dst.resolve()
        if dst in sources or _same_file(job.dst, job.src):
            job.error = f"output {job.dst} is an input file; refusing to overwrite it (choose another -o)"
        elif dst in seen:
            job.error = f"output {job.dst} would also be written by {seen[dst].src}; refusing to overwrite it"
        else:
            seen[dst] = job
        kinds = VIDEO_EXTENSIONS if job.is_video else IMAGE_EXTENSIONS
        if job.error is None and job.src.suffix.lower() in MEDIA_EXTENSIONS and job.dst.suffix.lower() not in kinds:
            what = "a video" if job.is_video else "an image"
            job.error = f"output {job.dst} is not {what} file type ({', '.join(sorted(kinds))})"

