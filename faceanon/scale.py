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

from .errors import FaceanonError, UsageError
from .io.manifest import Manifest
from .io.paths import Job
from .pipeline import PipelineConfig
from .runner import RunOptions, RunReport, anonymize_file, pending_jobs, say_warnings, settle_job


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
            report = RunReport()
            try:
                faces, methods = anonymize_file(self.pipeline, job, self.options, report)
                status, error = "done", ""
            except FaceanonError as e:
                faces, methods, status, error = 0, {}, "error", str(e)
            for key, value in (("rel", str(rel)), ("src", str(src)), ("dst", str(dst)), ("status", status),
                               ("faces", int(faces)), ("methods", dict(methods)), ("error", error),
                               ("warnings", list(report.warnings)), ("fallbacks", report.fallbacks),
                               ("detections", dict(report.detections))):
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
    todo = pending_jobs(jobs, manifest, report)
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
                job = Job(Path(row["src"]), row["rel"], Path(row["dst"]) if row["dst"] else None)
                if row["status"] == "done":
                    report.faces += row["faces"]
                    report.fallbacks += row["fallbacks"]
                    report.detections.update(row["detections"])
                report.warnings += list(row["warnings"])
                settle_job(report, manifest, job, (row["faces"], row["methods"]) if row["status"] == "done" else None,
                           row["error"] or None, on_error)
        finally:
            if manifest is not None:
                manifest.close()
    say_warnings(report, on_error)
    return report
