"""Batch driver: runs the pipeline over planned jobs (images and videos), one file at a time.

Every failure of one file becomes a one-line message and the batch goes on; privacy fails
closed: a file or frame whose detection failed is never written un-anonymized unless the user
said ``allow_unprocessed``."""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import FaceanonError, InputError, ProcessingError
from .io import Job, read_image, write_image
from .io import video as video_io
from .io.images import DEFAULT_MAX_PIXELS
from .io.manifest import Manifest, remove_stale_parts
from .pipeline import Pipeline
from .types import Face


@dataclass
class RunOptions:
    quality: int = 95
    keep_metadata: bool = False
    keep_audio: bool = True
    allow_unprocessed: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    progress: bool = True


@dataclass
class RunReport:
    done: int = 0
    skipped: int = 0  # of ``done``: finished by an earlier run (manifest), not redone
    faces: int = 0
    fallbacks: int = 0  # faces that got the fallback filter instead of the method
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    detections: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)  # keeps a running progress bar intact


def _progress_bar(total: int | None, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, file=sys.stderr)


def _detect_or_fail(pipeline: Pipeline, image: np.ndarray, where: str) -> list[Face]:
    try:
        return pipeline.detect(image)
    except FaceanonError:
        raise
    except Exception as e:  # a detector crash must not let the frame through
        raise ProcessingError(f"{where}: face detection failed ({type(e).__name__}: {e})") from None


def _files(jobs: list[Job], options: RunOptions, desc: str):
    """The jobs, behind a progress bar when there are several and a terminal to show it."""
    if not options.progress or len(jobs) < 2:
        return jobs
    from tqdm import tqdm

    return tqdm(jobs, desc=desc, unit="file", file=sys.stderr, leave=False)


# What a processed file gives back for the manifest: faces, and how many got each method.
FileResult = tuple[int, Counter]


def pending_jobs(jobs: list[Job], manifest: Manifest | None, report: RunReport) -> list[Job]:
    """The jobs left to do. With a ``manifest``, files an earlier run finished under the same
    settings are counted in ``report`` as done (skipped) and left out, and the partial files a
    killed run left in the output folders are removed first."""
    if manifest is None:
        return list(jobs)
    remove_stale_parts({j.dst.parent for j in jobs if j.dst is not None})
    todo = []
    for job in jobs:
        if manifest.is_done(job.rel, job.src, job.dst):
            report.done += 1
            report.skipped += 1
        else:
            todo.append(job)
    return todo


def settle_job(report: RunReport, manifest: Manifest | None, job: Job, result: FileResult | None, error: str | None,
               on_error: Callable[[str], None]) -> None:
    """Count one processed file (``result``) or failed one (``error``: one line said now) and record it."""
    if error is None:
        faces, methods = result
        report.done += 1
        if manifest is not None:
            manifest.record(job.rel, job.src, job.dst, "done", faces, dict(methods))
    else:
        report.errors.append(error)
        on_error(f"error: {error}")
        if manifest is not None:
            manifest.record(job.rel, job.src, job.dst, "error", error=error)


def say_warnings(report: RunReport, on_error: Callable[[str], None]) -> None:
    for w in report.warnings:
        on_error(f"warning: {w}")


def _process(job: Job, report: RunReport, image: Callable[[Job, RunReport], FileResult],
             video: Callable[[Job, RunReport], FileResult]) -> FileResult:
    if job.error:
        raise InputError(job.src, job.error)
    return (video if job.is_video else image)(job, report)


def _run_jobs(jobs: list[Job], options: RunOptions, desc: str, image: Callable[[Job, RunReport], FileResult],
              video: Callable[[Job, RunReport], FileResult], on_error: Callable[[str], None],
              manifest: Manifest | None = None) -> RunReport:
    """Each job through ``image`` or ``video``; a failing file becomes one error line and the
    batch goes on; warnings are said at the end. With a ``manifest``, finished files are skipped
    (:func:`pending_jobs`) and each processed file is recorded."""
    report = RunReport()
    try:
        for job in _files(pending_jobs(jobs, manifest, report), options, desc):
            try:
                result = _process(job, report, image, video)
            except FaceanonError as e:
                settle_job(report, manifest, job, None, str(e), on_error)
            else:
                settle_job(report, manifest, job, result, None, on_error)
    finally:
        if manifest is not None:
            manifest.close()
    say_warnings(report, on_error)
    return report


def _note_methods(report: RunReport, where: str, extras: list[dict]) -> Counter:
    """How many faces got each method (from each face's ``extra``); the faces that got the
    fallback are said in one warning per file."""
    methods, reasons = Counter(), Counter()
    for extra in extras:
        methods[extra.get("method", "?")] += 1
        if "fallback" in extra:
            reasons[extra["fallback"]] += 1
    if reasons:
        report.fallbacks += sum(reasons.values())
        why = "; ".join(f"{n} x {r}" for r, n in reasons.most_common())
        report.warnings.append(f"{where}: {sum(reasons.values())} face(s) got the fallback filter ({why})")
    return methods


def _anonymize_steps(pipeline: Pipeline, options: RunOptions):
    return (lambda job, report: _anonymize_image(pipeline, job, options, report),
            lambda job, report: _anonymize_video(pipeline, job, options, report))


def anonymize_jobs(pipeline: Pipeline, jobs: list[Job], options: RunOptions,
                   on_error: Callable[[str], None] = _say, manifest: Manifest | None = None) -> RunReport:
    return _run_jobs(jobs, options, "anonymize", *_anonymize_steps(pipeline, options), on_error, manifest)


def anonymize_file(pipeline: Pipeline, job: Job, options: RunOptions, report: RunReport) -> FileResult:
    """One job anonymized (faces, methods), its figures added to ``report``; a failure raises
    :class:`FaceanonError` (what ``anonymize_jobs`` does per file, for other schedulers)."""
    return _process(job, report, *_anonymize_steps(pipeline, options))


def _anonymize_image(pipeline: Pipeline, job: Job, options: RunOptions, report: RunReport) -> FileResult:
    picture = read_image(job.src, options.max_pixels)
    try:
        faces = _detect_or_fail(pipeline, picture.rgb, str(job.src))
    except ProcessingError:
        if not options.allow_unprocessed:
            raise
        report.warnings.append(f"{job.src}: detection failed; written unchanged (--allow-unprocessed)")
        write_image(job.dst, picture, quality=options.quality, keep_metadata=options.keep_metadata)
        return 0, Counter()
    try:
        out, faces = pipeline.anonymize(picture.rgb, faces)
        trailer = pipeline.anonymizer.recovery_payload(picture.rgb, out)
    except FaceanonError:
        raise
    except Exception as e:
        raise ProcessingError(f"{job.src}: anonymization failed ({type(e).__name__}: {e}); nothing written") from None
    report.faces += len(faces)
    report.detections[job.rel] = [f.to_dict() for f in faces]
    methods = _note_methods(report, str(job.src), [f.extra for f in faces])
    write_image(job.dst, picture, out, quality=options.quality, keep_metadata=options.keep_metadata, trailer=trailer)
    return len(faces), methods


def _anonymize_video(pipeline: Pipeline, job: Job, options: RunOptions, report: RunReport) -> FileResult:
    info = video_io.probe(job.src)
    if info.width * info.height > options.max_pixels:
        raise InputError(job.src, f"video frames are {info.width}x{info.height}, over the limit of "
                         f"{options.max_pixels / 1e6:.0f} MP (raise it with --max-pixels)")
    if getattr(pipeline.anonymizer, "payload", False) and not getattr(pipeline.anonymizer, "inverse", False):
        report.warnings.append(f"{job.src}: videos carry no recovery payload; deanonymizing it uses the image-only inverse")
    # Pass 1: detections of every frame, linked into tracks (frames are not kept: methods that
    # draw new faces read the video again to choose each track's identity and check its frames).
    bar = _progress_bar(info.frames, f"{job.rel} 1/2 detect", options.progress)
    check_bar = []  # opened when the checking of new faces starts

    def checked(index: int) -> None:
        if not check_bar:
            if bar is not None:
                bar.close()  # detection is done
            check_bar.append(_progress_bar(info.frames, f"{job.rel} 1/2 check new faces", options.progress))
        if check_bar[0] is not None:
            check_bar[0].update(index + 1 - check_bar[0].n)

    try:
        plan, failed = pipeline.plan_video(video_io.read_ahead(video_io.read_frames(job.src)), info.fps,
                                           on_frame=lambda i: bar is not None and bar.update(1),
                                           frames_again=lambda: video_io.read_frames(job.src), on_check=checked)
    finally:
        for b in [bar, *check_bar]:
            if b is not None:
                b.close()
    failed = set(failed)
    # Per frame: the faces anonymized (--json) and what each got (its extra); kept by frame
    # index because frames may be processed two at a time, and reported in frame order.
    records: dict[int, list[dict]] = {}
    seen: dict[int, list[dict]] = {}

    def process(frame: np.ndarray, index: int) -> np.ndarray:
        try:
            if index in failed:
                raise ProcessingError("detection failed")
            # a frame pass 1 did not see (should not happen) is detected on its own
            faces = plan[index] if index < len(plan) else _detect_or_fail(pipeline, frame, f"{job.src} frame {index}")
            out, faces = pipeline.anonymize(frame, faces)
            records[index] = [f.to_dict() for f in faces]
            seen[index] = [{k: f.extra[k] for k in Face.REPORTED if k in f.extra} for f in faces]
            if index < len(plan):
                plan[index] = []  # done: free it
            return out
        except Exception:
            failed.add(index)
            # Fail closed: a frame we could not anonymize is blacked out, not passed through.
            return frame if options.allow_unprocessed else np.zeros_like(frame)

    # Pass 2: anonymize and encode.
    bar = _progress_bar(info.frames, f"{job.rel} 2/2 anonymize", options.progress)
    try:
        # A method that paints new faces carries verdicts along a track from frame to frame
        # (the recognizer gate), so its frames go in order; filters take two at a time.
        workers = 1 if pipeline.anonymizer.paints_new_faces else 2
        report.warnings += video_io.transcode(job.src, job.dst, process, keep_audio=options.keep_audio,
                                              progress=lambda n: bar is not None and bar.update(1), workers=workers)
    finally:
        if bar is not None:
            bar.close()
    for index in sorted(records):
        report.detections[f"{job.rel}#frame={index}"] = records[index]
    seen = [extra for index in sorted(seen) for extra in seen[index]]
    if failed:
        fate = "left unchanged (--allow-unprocessed)" if options.allow_unprocessed else "blacked out"
        raise ProcessingError(f"{job.src}: {len(failed)} frame(s) could not be processed and were {fate} "
                              f"(first: frame {min(failed)})")
    report.faces += len(seen)
    return len(seen), _note_methods(report, str(job.src), seen)


def deanonymize_jobs(pipeline: Pipeline, password: str, jobs: list[Job], options: RunOptions,
                     on_error: Callable[[str], None] = _say) -> RunReport:
    """Undo a reversible method: images whose encrypted payload opens with ``password`` get
    their original regions back exactly; other images and videos go through the pipeline's
    inverse (``pipeline.anonymizer.inverse`` is set by the caller)."""
    from .io.payload import PayloadError, open_sealed, paste, read_trailer

    def restore_image(job: Job, report: RunReport) -> FileResult:
        picture = read_image(job.src, options.max_pixels)
        try:
            sealed = read_trailer(job.src)
            recovery = open_sealed(sealed, password) if sealed else None
            out = paste(picture.rgb, recovery) if recovery is not None else None
        except PayloadError as e:
            # never paste from bad bytes, nor guess: the user learns the file is damaged
            raise InputError(job.src, f"{e}; nothing written") from None
        regions = recovery.regions if recovery is not None else None
        if regions is None:
            # a missing payload is news only from a method that writes them (fit, not fit-net)
            if sealed or pipeline.anonymizer.writes_payload:
                why = ("the password does not open its recovery payload; the image-only inverse under this password "
                       "gives another face, not the original" if sealed
                       else "it carries no payload; image-only inverse (approximate)")
                report.warnings.append(f"{job.src}: {why}")
            out, faces = pipeline.anonymize(picture.rgb, _detect_or_fail(pipeline, picture.rgb, str(job.src)))
            report.faces += len(faces)
        write_image(job.dst, picture, out, quality=options.quality, keep_metadata=options.keep_metadata)
        return (len(regions), Counter(restored=len(regions))) if regions is not None else (len(faces), Counter())

    return _run_jobs(jobs, options, "deanonymize", restore_image,
                     lambda job, report: _anonymize_video(pipeline, job, options, report), on_error)


def detect_jobs(pipeline: Pipeline, jobs: list[Job], options: RunOptions,
                on_error: Callable[[str], None] = _say) -> RunReport:
    report = RunReport()
    for job in _files(jobs, options, "detect"):
        try:
            if job.is_video:
                for index, frame in enumerate(video_io.read_frames(job.src)):
                    faces = _detect_or_fail(pipeline, frame, f"{job.src} frame {index}")
                    report.detections[f"{job.rel}#frame={index}"] = [f.to_dict() for f in faces]
            else:
                picture = read_image(job.src, options.max_pixels)
                faces = _detect_or_fail(pipeline, picture.rgb, str(job.src))
                report.detections[job.rel] = [f.to_dict() for f in faces]
                report.faces += len(faces)
            report.done += 1
        except FaceanonError as e:
            report.errors.append(str(e))
            on_error(f"error: {e}")
    return report
