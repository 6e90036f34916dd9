"""`faceanon anonymize IN -o OUT --engine ray`: the same runner, spread over Ray Data workers.

A thin shell: each Ray actor builds the :class:`~faceanon.pipeline.Pipeline` once (models loaded
once per worker) and runs the ordinary runner on one file at a time; the driver alone reads and
writes the folder's manifest (``OUT/.faceanon-manifest.jsonl``), so a run is resumable and
auditable exactly like a local one, and a file that fails is one error line while the job goes
on. Outputs are byte-identical to a local run: every file's randomness comes from ``--seed`` and
the face, not from the order files are processed in.

On a cluster, ``--ray-address`` names the head node; inputs and outputs must then be paths
every worker sees (a shared filesystem).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import UsageError
from .io.manifest import Manifest, remove_stale_parts
from .io.paths import Job
from .pipeline import PipelineConfig
from .runner import RunOptions, RunReport, anonymize_jobs


class _Recorder:
    """Stands in for the manifest inside a worker: nothing is skipped, each result is kept for
    the driver to record."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def is_done(self, rel, src, dst) -> bool:
        return False

    def record(self, rel, src, dst, status, faces=0, methods=None, error=None) -> None:
        self.entries.append({"status": status, "faces": faces, "methods": methods or {}, "error": error})

    def close(self) -> None:
        pass


class _Worker:
    """One Ray actor: a pipeline built once, files anonymized one by one."""

    def __init__(self, config: PipelineConfig, options: RunOptions) -> None:
        from .pipeline import Pipeline

        self.pipeline = Pipeline(config)
        self.options = options

    def __call__(self, batch: dict) -> dict:
        out: dict[str, list] = {k: [] for k in ("rel", "src", "dst", "status", "faces", "methods", "error",
                                               "warnings", "fallbacks", "detections")}
        for rel, src, dst, refused in zip(batch["rel"], batch["src"], batch["dst"], batch["refused"]):
            job = Job(Path(src), str(rel), Path(dst) if dst else None, str(refused) or None)
            recorder = _Recorder()
            report = anonymize_jobs(self.pipeline, [job], self.options, on_error=lambda m: None,
                                    manifest=recorder, tidy_outputs=False)
            entry = recorder.entries[0] if recorder.entries else {"status": "error", "faces": 0, "methods": {},
                                                                     "error": "; ".join(report.errors) or "not processed"}
            for key, value in (("rel", str(rel)), ("src", str(src)), ("dst", str(dst)), ("status", entry["status"]),
                               ("faces", int(entry["faces"])), ("methods", dict(entry["methods"])),
                               ("error", entry["error"] or ""), ("warnings", list(report.warnings)),
                               ("fallbacks", report.fallbacks), ("detections", dict(report.detections))):
                out[key].append(value)
        return out


def anonymize_with_ray(config: PipelineConfig, jobs: list[Job], options: RunOptions, manifest: Manifest | None,
                       workers: int = 2, address: str | None = None,
                       on_error: Callable[[str], None] = print) -> RunReport:
    """The runner's ``anonymize_jobs`` over Ray Data: ``workers`` actors (1 CPU each)."""
    import logging

    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'faceanon[ray]'") from None
    report = RunReport()
    todo = []
    for job in jobs:
        if manifest is not None and job.dst is not None and manifest.is_done(job.rel, job.src, job.dst):
            report.done += 1
            report.skipped += 1
        else:
            todo.append(job)
    remove_stale_parts({j.dst.parent for j in todo if j.dst is not None})
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     **({} if address else {"num_cpus": workers}))
        # Ray configures its loggers when it starts: quiet them (errors still show) after that
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("ray")] + ["ray", "ray.data"]:
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = options.progress
        context.enable_progress_bar_name_truncation = False
        context.print_on_execution_start = False
        items = [{"rel": j.rel, "src": str(j.src), "dst": str(j.dst) if j.dst else "", "refused": j.error or ""}
                 for j in todo]
        # a few blocks per worker keeps them all busy without a block per file on huge jobs
        results = ray.data.from_items(items, override_num_blocks=min(len(items), 16 * workers)).map_batches(
            _Worker, fn_constructor_kwargs={"config": config, "options": RunOptions(**{**vars(options), "progress": False})},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
        try:
            for row in results.iter_rows():
                if manifest is not None:
                    manifest.record(row["rel"], Path(row["src"]), Path(row["dst"]), row["status"], row["faces"],
                                    row["methods"], row["error"] or None)
                if row["status"] == "done":
                    report.done += 1
                    report.faces += row["faces"]
                    report.fallbacks += row["fallbacks"]
                    report.detections.update(row["detections"])
                else:
                    report.errors.append(row["error"])
                    on_error(f"error: {row['error']}")
                report.warnings += list(row["warnings"])
        finally:
            if manifest is not None:
                manifest.close()
    for w in report.warnings:
        on_error(f"warning: {w}")
    return report
