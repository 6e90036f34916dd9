"""The `faceanon` command."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from . import detectors as list_detectors
from . import methods as list_methods
from .anonymize import REGION_SHAPES
from .detect import DEFAULT_DETECTOR
from .errors import FaceanonError, UsageError
from .io import plan_jobs
from .io.atomic import atomic_path
from .io.manifest import Manifest
from .io.images import DEFAULT_MAX_PIXELS
from .pipeline import MASK_SCALE_RANGE, Pipeline, PipelineConfig
from .registry import key_values, range_violation
from .runner import RunOptions, anonymize_jobs, deanonymize_jobs, detect_jobs


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``faceanon: error: --quality: must be 1..100 (got 500)``)
    and exit status 2, raised while parsing: before any file is read."""

    def error(self, message: str):  # type: ignore[override]
        message = message[len("argument "):] if message.startswith("argument ") else message
        sys.stderr.write(f"faceanon: error: {message.splitlines()[0]} (see {self.prog} --help)\n")
        sys.exit(2)


def ranged(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    """An argparse ``type``: parses ``kind`` and checks the range (NaN and infinities refused)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} (got {text!r})") from None
        problem = range_violation(value, low, high, low_open)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # what argparse names in its own messages
    return parse


def _add_detection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"face detector (default {DEFAULT_DETECTOR}); see `faceanon detectors`")
    p.add_argument("--detector-param", action="append", metavar="KEY=VALUE", help="detector parameter, repeatable")
    p.add_argument("--files-from", metavar="LIST", help="file of paths relative to the single input ROOT")
    p.add_argument("--max-pixels", type=ranged(int, 1, 10**10), default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images larger than this many pixels (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faceanon", description="De-identify faces in images and videos.")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("anonymize", help="anonymize faces in images, folders and videos")
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="image/video files or folders (searched recursively)")
    a.add_argument("-o", "--output", required=True, help="output folder (or output file for a single input)")
    a.add_argument("--method", default="blur", help="anonymization method (default blur); see `faceanon methods`")
    a.add_argument("--param", action="append", metavar="KEY=VALUE", help="method parameter, repeatable")
    a.add_argument("--region", default="ellipse", choices=REGION_SHAPES, help="shape of the replaced region (default ellipse)")
    a.add_argument("--mask-scale", type=ranged(float, *MASK_SCALE_RANGE), default=1.3, help="grow the region by this factor about the face (default 1.3)")
    a.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0, help="seed of random methods; same seed, same result")
    a.add_argument("--quality", type=ranged(int, 1, 100), default=95, help="JPEG/WebP quality of outputs (default 95)")
    a.add_argument("--keep-audio", action=argparse.BooleanOptionalAction, default=True,
                   help="copy the audio stream of videos (default; --no-keep-audio drops it)")
    a.add_argument("--keep-metadata", action="store_true", help="keep EXIF (incl. GPS) in outputs; stripped by default")
    a.add_argument("--allow-unprocessed", action="store_true",
                   help="write files/frames whose detection failed unchanged (default: fail closed, never write them)")
    a.add_argument("--json", metavar="OUT.json", help="also write each face's box, score and what it got")
    a.add_argument("--redo", action="store_true",
                   help="process every file again (default: a rerun into the same folder skips files its manifest "
                        "says are done with the same settings)")
    a.add_argument("--password", help="password of the reversible method fit (same as --param password=...)")
    a.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default): this process; ray: Ray Data workers, each loading the models once")
    a.add_argument("--workers", type=ranged(int, 1, 4096), default=2, help="with --engine ray: number of workers (default 2)")
    a.add_argument("--ray-address", help="with --engine ray: a running cluster's address (default: a local Ray)")
    _add_detection_args(a)

    r = sub.add_parser("deanonymize", help="restore faces anonymized by the reversible method fit")
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="files anonymized with --method fit, or folders")
    r.add_argument("-o", "--output", required=True, help="output folder (or output file for a single input)")
    r.add_argument("--password", required=True, help="the password used to anonymize")
    r.add_argument("--method", default="fit", help="the reversible method used (default fit)")
    r.add_argument("--param", action="append", metavar="KEY=VALUE", help="the method's parameters, as when anonymizing")
    r.add_argument("--quality", type=ranged(int, 1, 100), default=95, help="JPEG/WebP quality of outputs (default 95)")
    r.add_argument("--keep-audio", action=argparse.BooleanOptionalAction, default=True,
                   help="copy the audio stream of videos (default; --no-keep-audio drops it)")
    _add_detection_args(r)

    d = sub.add_parser("detect", help="detect faces and write their boxes as JSON")
    d.add_argument("inputs", nargs="+", metavar="INPUT")
    d.add_argument("--json", required=True, metavar="OUT.json", help='{"<relative path>": [[x1, y1, x2, y2, score], ...]}')
    _add_detection_args(d)

    m = sub.add_parser("methods", help="list the anonymization methods and their parameters")
    m.add_argument("--json", action="store_true")
    dd = sub.add_parser("detectors", help="list the face detectors and their parameters")
    dd.add_argument("--json", action="store_true")

    ev = sub.add_parser("evaluate", help="measure privacy, utility, realism and speed of a method")
    ev.add_argument("protocol", choices=["lfw", "celeba", "all", "wider", "video", "table"],
                    help="lfw/celeba: verification protocol on that pair list; all: every method on both; "
                         "wider: detection coverage on the WIDER subset, and with --method where the method painted "
                         "new faces and how real they look; video CLIP: leak, faces uncovered, identity consistency "
                         "and flicker of the method on a clip; table: refresh the results tables of README.md and docs/evaluation.md from report/")
    ev.add_argument("clip", nargs="?", help="with `video`: the video file")
    ev.add_argument("--save", help="with `video`: keep the anonymized clip at this path")
    ev.add_argument("--truth", help="with `video`: JSON of the clip's annotated faces, {\"frames\": [[[x1, y1, x2, y2], "
                    "...], ...]} (one list per frame); reference detections on none of them are set apart, not judged")
    ev.add_argument("--method", help="method to evaluate (default blur; with `wider`: none, detection coverage only)")
    ev.add_argument("--param", action="append", metavar="KEY=VALUE")
    ev.add_argument("--detector", default=DEFAULT_DETECTOR)
    ev.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0)
    ev.add_argument("--limit", type=ranged(int, 1), help="use this many same-identity pairs, spread over the folds "
                    "(with `wider`: the first N photos)")
    ev.add_argument("--skip", type=ranged(int, 0), default=0, help="with `wider`: leave out the first N photos")
    ev.add_argument("--sheet", help="with `wider --method`: PNG of every new face painted (24 px or more, and all "
                    "on non-faces), before | after")
    ev.add_argument("--images", help="image folder <identity>/<file>.jpg (default: the shared dataset)")
    ev.add_argument("--pairs", help="pairs file (LFW pairs.txt format or 'a b 1|0' lines)")
    ev.add_argument("--report", default="report", help="output folder (default report/)")
    ev.add_argument("--curve-pairs", type=ranged(int, 0, 100000), default=60, help="pairs per point of the controllability curve (0 = off)")
    ev.add_argument("--readme", default="README.md", help="README whose short results table `all` and `table` refresh, "
                    "with the full tables in docs/evaluation.md beside it ('' = none)")
    ev.add_argument("--methods", help="with `all`: comma-separated subset of methods")
    ev.add_argument("--after", choices=["jpeg75", "downscale0.5"],
                    help="degrade the anonymized images before scoring (robustness); the run is named METHOD@AFTER")
    ev.add_argument("-q", "--quiet", action="store_true")

    t = sub.add_parser("train", help="train CIAGAN, the FIT transformer or CFA-Net on identity folders (resumable)")
    t.add_argument("network", choices=["ciagan", "fit", "cfa"])
    t.add_argument("--data", action="append", help="folder of <identity>/<image> files, repeatable (needed to start a run)")
    t.add_argument("--out", required=True, help="run folder: checkpoint.pt, log.jsonl, samples_*.png")
    t.add_argument("--steps", type=ranged(int, 1, 10**8), default=20000, help="train until this many steps in total")
    t.add_argument("--every", type=ranged(int, 1, 10**8), default=200, help="checkpoint and sample grid every N steps")
    t.add_argument("--size", type=int, choices=[32, 64, 128, 256], help="image size (default 64; the papers use 128)")
    t.add_argument("--width", type=ranged(float, 0, 4, low_open=True), help="channel multiplier (1 = the paper's network)")
    t.add_argument("--batch", type=ranged(int, 1, 4096), help="batch size")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--threads", type=ranged(int, 0, 1024), default=0, help="CPU threads for torch (0 = its default)")
    t.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0)
    t.add_argument("--export", metavar="FILE", help="do not train: write the run's small inference checkpoint to FILE")
    t.add_argument("-q", "--quiet", action="store_true")

    demo = sub.add_parser("demo", help="anonymize an image with several methods into a before/after sheet")
    demo.add_argument("image", nargs="?", default="samples/city.jpg")
    demo.add_argument("-o", "--output", default="demo")
    demo.add_argument("--methods", default="blur,pixelate,mask,noise,edge,superpixel,cfa")

    sv = sub.add_parser("serve", help="a local web page: drop a photo or video, pick a method, compare, download")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    sv.add_argument("--port", type=ranged(int, 1, 65535), default=8000)
    sv.add_argument("--max-upload-mb", type=ranged(float, 0.001, 10000), default=50, help="largest upload accepted")
    return parser


def _write_json(path: str, data: dict) -> None:
    with atomic_path(Path(path)) as tmp:
        # One entry per line: readable, diffable, still plain JSON.
        lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data.items()]
        Path(tmp).write_text("{\n" + ",\n".join(lines) + "\n}\n")


def _print_listing(entries: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    for name, info in entries.items():
        print(f"{name}: {info['summary']}")
        for key, p in info["params"].items():
            bounds = f", {p['range']}" if p["range"] else ""
            print(f"    {key} ({p['type']}{bounds}, default {p['default']!r}): {p['help']}")


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run as ev

    progress = not args.quiet and sys.stderr.isatty()
    if args.protocol != "video" and (args.clip or args.truth):
        raise UsageError(f"evaluate {args.protocol} takes no clip or --truth ({args.clip or args.truth!r})")
    if args.protocol == "wider" and args.method is None:
        from .evaluate.coverage import evaluate_wider

        print(json.dumps(evaluate_wider(args.detector, args.images)))
        return 0
    method = args.method or "blur"
    params = ev.evaluation_params(method, key_values(args.param, "--param"))
    config = PipelineConfig(method=method, params=params, detector=args.detector, seed=args.seed)
    if args.protocol == "video":
        if not args.clip:
            raise UsageError("evaluate video needs a clip: faceanon evaluate video CLIP [--method M]")
        Pipeline(config)  # a bad method or parameter fails now
        from .evaluate.video import load_truth

        truth = load_truth(Path(args.truth)) if args.truth else None
        result = ev.evaluate_video(config, Path(args.clip), Path(args.save) if args.save else None, Path(args.report),
                                   progress, truth)
        print(json.dumps(result))
        return 0
    if args.protocol == "wider":
        result = ev.evaluate_wider(config, args.images, args.limit, args.skip, args.sheet, Path(args.report), progress)
        print(json.dumps({k: v for k, v in result.items() if k not in ("non_faces", "renders")}))
        return 0
    if args.protocol == "table":
        ev.refresh_tables(Path(args.readme), Path(args.report))
        from .evaluate.report import scatter_plot

        for dataset in ev.DATASETS:
            scatter_plot(Path(args.report), dataset)
        return 0
    if args.protocol == "all":
        methods = [m for m in args.methods.split(",") if m] if args.methods else None
        ev.evaluate_all(args.limit, Path(args.report), Path(args.readme) if args.readme else None, methods=methods,
                        progress=progress)
        return 0
    if config.method != ev.ORIGINAL:
        Pipeline(config)  # a bad method or parameter fails now, not after the gallery is built
    result = ev.evaluate_method(args.protocol, config, args.limit, Path(args.report), args.images, args.pairs,
                                args.curve_pairs, progress, args.after)
    ev.print_line(result)
    return 0


def _interrupt(signum, frame):
    # SIGTERM (a scheduler stopping the job) unwinds like Ctrl-C: temporaries are removed and
    # the manifest keeps what was finished.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    except FaceanonError as e:
        print(f"faceanon: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("faceanon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "methods":
        _print_listing(list_methods(), args.json)
        return 0
    if args.command == "detectors":
        _print_listing(list_detectors(), args.json)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(Path(args.image), Path(args.output), [m for m in args.methods.split(",") if m])
        return 0

    if args.command == "serve":
        from .serve import serve

        serve(args.host, args.port, args.max_upload_mb)
        return 0
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "train":
        from .models.nets import train as nets

        if args.export:
            nets.export(Path(args.out), Path(args.export))
            print(f"faceanon: wrote {args.export}", file=sys.stderr)
            return 0
        result = nets.train(args.network, args.data or [], Path(args.out), args.steps, args.every, args.size, args.width,
                            args.batch, args.device, args.threads, args.seed, progress=not args.quiet)
        print(f"faceanon: {args.network} at step {result['step']} in {args.out}", file=sys.stderr)
        return 0
    detector_params = key_values(args.detector_param, "--detector-param")
    options = RunOptions(max_pixels=args.max_pixels, progress=not args.quiet and sys.stderr.isatty())
    if args.command == "detect":
        pipeline = Pipeline(PipelineConfig(detector=args.detector, detector_params=detector_params))
        jobs = plan_jobs(args.inputs, None, args.files_from)
        report = detect_jobs(pipeline, jobs, options)
        _write_json(args.json, report.detections)
    elif args.command == "deanonymize":
        params = {**key_values(args.param, "--param"), "password": args.password}
        pipeline = Pipeline(PipelineConfig(method=args.method, params=params, detector=args.detector,
                                           detector_params=detector_params))
        if not hasattr(pipeline.anonymizer, "inverse"):
            raise UsageError(f"method {args.method!r} is not reversible")
        pipeline.anonymizer.inverse = True
        options.quality, options.keep_audio = args.quality, args.keep_audio
        jobs = plan_jobs(args.inputs, args.output, args.files_from)
        report = deanonymize_jobs(pipeline, args.password, jobs, options)
    else:
        params = key_values(args.param, "--param")
        if args.password is not None:
            params["password"] = args.password
        config = PipelineConfig(method=args.method, params=params, detector=args.detector,
                                detector_params=detector_params, region=args.region, mask_scale=args.mask_scale,
                                seed=args.seed)
        pipeline = Pipeline(config)
        options.quality, options.keep_audio = args.quality, args.keep_audio
        options.keep_metadata, options.allow_unprocessed = args.keep_metadata, args.allow_unprocessed
        jobs = plan_jobs(args.inputs, args.output, args.files_from)
        manifest = None
        out_dir = Path(args.output).resolve()
        into_an_input = any(Path(i).resolve() == out_dir for i in args.inputs)  # refused below; write nothing there
        if not (len(jobs) == 1 and jobs[0].dst == Path(args.output)) and not into_an_input:  # a folder run: resumable
            settings = {k: v for k, v in vars(args).items()
                        if k not in ("inputs", "output", "files_from", "json", "quiet", "redo", "password", "command",
                                     "engine", "workers", "ray_address")}
            settings["param"] = sorted(p for p in (args.param or []) if not p.startswith("password="))
            settings["version"] = __version__
            manifest = Manifest(Path(args.output), settings, redo=args.redo)
        if args.engine == "ray":
            from .scale import anonymize_with_ray

            report = anonymize_with_ray(config, jobs, options, manifest, args.workers, args.ray_address,
                                        on_error=lambda m: print(m, file=sys.stderr))
        else:
            report = anonymize_jobs(pipeline, jobs, options, manifest=manifest)
        if args.json:
            _write_json(args.json, report.detections)
    total = len(jobs)
    earlier = f" ({report.skipped} done by an earlier run, skipped)" if report.skipped else ""
    fallbacks = f", {report.fallbacks} got the fallback filter" if report.fallbacks else ""
    print(f"faceanon: {report.done}/{total} file(s) done{earlier}, {report.faces} face(s){fallbacks}, "
          f"{len(report.errors)} error(s)", file=sys.stderr)
    return 0 if report.ok and total else 1
