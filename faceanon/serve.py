"""`faceanon serve`: a local web page to try faceanon on a photo or a short video.

A thin shell over the same runner as `faceanon anonymize` (one job per upload), so the page
gets exactly what the command line would write: the same detector, method, fallback and
errors. Uploads live in a private temporary folder (mode 0700) that is emptied after every
request's result is fetched and removed when the server stops; uploads over ``max_upload_mb``
are refused while they stream in. It listens on 127.0.0.1 unless told otherwise.
"""
# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and the
# fastapi names are imported inside create_app (the web extra is optional).
import contextlib
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from .anonymize import ANONYMIZERS
from .detect import DETECTORS
from .errors import FaceanonError, UsageError
from .io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, plan_jobs
from .pipeline import Pipeline, PipelineConfig
from .registry import key_values
from .runner import RunOptions, anonymize_jobs

DEFAULT_MAX_UPLOAD_MB = 50
CHUNK = 1 << 20

# The page: one file, no external resources (it must work offline); @@name@@ are filled in.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceanon</title>
<style>
 body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px}
 #drop{border:2px dashed #888;padding:1.2em;text-align:center;margin:.8em 0}
 #drop.over{background:#eef}
 .pair{display:flex;gap:1em} .pair figure{flex:1;margin:0} .pair img,.pair video{max-width:100%;display:block}
 .boxed{position:relative} .boxed canvas{position:absolute;left:0;top:0;width:100%;height:100%}
 #message{min-height:1.4em} .error{color:#b00} label{margin-right:1em}
</style></head><body>
<h1>faceanon</h1>
<p>Drop a photo or a short video, choose a method, and compare. Nothing leaves this computer.</p>
<div>
 <label>method <select id="method">@@methods@@</select></label>
 <label>detector <select id="detector">@@detectors@@</select></label>
 <label>strength <input id="strength" type="range" min="0" max="1" step="1" value="0"> <span id="strength-value"></span></label>
</div>
<div id="drop">drop a file here, or <input id="file" type="file" accept="@@accept@@"></div>
<button id="go">anonymize</button>
<p id="message"></p>
<div class="pair">
 <figure><figcaption>before (detected faces boxed)</figcaption><div id="before"></div></figure>
 <figure><figcaption>after</figcaption><div id="after"></div><a id="download" hidden>download</a></figure>
</div>
<script>
const strengths = @@strengths@@;
const $ = id => document.getElementById(id);
let chosen = null;
// Slider position 0 is the method's own default; 1..n are its strength values, weak to strong.
function showStrength() {
  const s = strengths[$("method").value], k = +$("strength").value;
  $("strength").disabled = !s; $("strength").max = s ? s[1].length : 0;
  if (!s || k > s[1].length) $("strength").value = 0;
  const v = +$("strength").value;
  $("strength-value").textContent = s && v > 0 ? s[0] + " = " + s[1][v - 1] : "default";
}
$("method").onchange = showStrength; $("strength").oninput = showStrength;
$("file").onchange = () => { chosen = $("file").files[0]; $("message").textContent = chosen ? chosen.name : ""; };
$("drop").ondragover = e => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = e => { e.preventDefault(); $("drop").classList.remove("over"); chosen = e.dataTransfer.files[0];
  $("message").textContent = chosen ? chosen.name : ""; };
function media(url, isVideo) {
  const el = document.createElement(isVideo ? "video" : "img"); el.src = url; if (isVideo) el.controls = true; return el;
}
function boxed(file, faces) {
  const url = URL.createObjectURL(file);
  if (file.type.startsWith("video")) return media(url, true);
  const holder = document.createElement("div"), img = new Image(), canvas = document.createElement("canvas");
  holder.className = "boxed"; holder.append(img, canvas);
  img.onload = () => { canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; const g = canvas.getContext("2d");
    g.lineWidth = Math.max(2, img.naturalWidth / 400); g.strokeStyle = "#0f0";
    for (const f of faces) { const [x1, y1, x2, y2] = f.box; g.strokeRect(x1, y1, x2 - x1, y2 - y1); } };
  img.src = url; return holder;
}
$("go").onclick = async () => {
  if (!chosen) { $("message").textContent = "choose a file first"; return; }
  const q = new URLSearchParams({name: chosen.name, method: $("method").value, detector: $("detector").value});
  const s = strengths[$("method").value], v = +$("strength").value;
  if (s && v > 0) q.append("param", s[0] + "=" + s[1][v - 1]);
  $("message").className = ""; $("message").textContent = "working...";
  const r = await fetch("/anonymize?" + q, {method: "POST", body: chosen}); const data = await r.json();
  if (!r.ok) { $("message").className = "error"; $("message").textContent = data.error; return; }
  $("message").textContent = data.summary; window.faces = data.faces;
  $("before").replaceChildren(boxed(chosen, data.faces));
  const out = await fetch(data.result); const blob = await out.blob(); const url = URL.createObjectURL(blob);
  $("after").replaceChildren(media(url, data.video));
  Object.assign($("download"), {href: url, download: data.name, hidden: false});
  document.body.dataset.state = "done";
};
showStrength();
</script></body></html>
"""


def _options(names: list[str], selected: str) -> str:
    return "".join(f'<option value="{n}"{" selected" if n == selected else ""}>{n}</option>' for n in names)


def create_app(max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, workdir: Path | None = None):
    """The FastAPI application (``workdir``: where uploads go; default a private temporary folder)."""
    import json

    from fastapi import FastAPI, Query, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool

    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="faceanon-serve-"))
    root.chmod(0o700)
    limit = int(max_upload_mb * (1 << 20))
    methods = ANONYMIZERS.names()
    strengths = {m: [s[0], s[1]] for m in methods if (s := getattr(ANONYMIZERS.get(m), "strength", None))}
    page = PAGE
    for key, value in (("methods", _options(methods, "blur")), ("detectors", _options(DETECTORS.names(), "yunet")),
                       ("strengths", json.dumps(strengths)),
                       ("accept", ",".join(sorted(IMAGE_EXTENSIONS) + sorted(VIDEO_EXTENSIONS)))):
        page = page.replace(f"@@{key}@@", value)
    results: dict[str, Path] = {}
    lock = threading.Lock()  # one anonymization at a time: two CPU cores, models loaded once
    pipelines: dict[tuple, Pipeline] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="faceanon", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.workdir = root

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.post("/anonymize")
    async def anonymize(request: Request, name: str = "upload", method: str = "blur", detector: str = "yunet",
                        param: list[str] = Query(default=[])):
        # The file is the request body, streamed straight into the private folder (no spooling
        # to the system's temporary directory) and cut off at the limit.
        job = root / uuid.uuid4().hex
        job.mkdir(mode=0o700)
        name = Path(name).name or "upload"
        try:
            suffix = Path(name).suffix.lower()
            if suffix not in IMAGE_EXTENSIONS and suffix not in VIDEO_EXTENSIONS:
                raise UsageError(f"{name}: not a photo or video faceanon reads ({suffix or 'no extension'})")
            if int(request.headers.get("content-length") or 0) > limit:
                raise UsageError(f"{name}: larger than the {max_upload_mb:g} MB upload limit")
            source = job / f"input{suffix}"
            size = 0
            with source.open("wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise UsageError(f"{name}: larger than the {max_upload_mb:g} MB upload limit")
                    f.write(chunk)
            if size == 0:
                raise UsageError(f"{name}: the upload is empty")
            params = key_values(param, "param")
            output = job / f"anonymized{suffix if suffix in IMAGE_EXTENSIONS else '.mp4'}"
            jobs = plan_jobs([str(source)], str(output))

            def work():
                key = (method, detector, tuple(sorted(params.items())))
                with lock:
                    if key not in pipelines:
                        pipelines.clear()  # keep one configuration's models in memory
                        pipelines[key] = Pipeline(PipelineConfig(method=method, detector=detector,
                                                                 params=ANONYMIZERS.parse_params(method, params)))
                    return anonymize_jobs(pipelines[key], jobs, RunOptions(progress=False), on_error=lambda m: None)

            # in a worker thread: the server keeps answering (and serving results) meanwhile
            report = await run_in_threadpool(work)
            if not report.ok:
                # the runner's one-line reason, with the user's file name instead of ours
                raise UsageError(report.errors[0].replace(str(source), name))
        except FaceanonError as e:
            shutil.rmtree(job, ignore_errors=True)
            status = 413 if "upload limit" in str(e) else 400
            return JSONResponse({"error": str(e).splitlines()[0]}, status_code=status)
        except Exception as e:  # noqa: BLE001 - the page shows one line, never a traceback
            shutil.rmtree(job, ignore_errors=True)
            return JSONResponse({"error": f"{name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"},
                                status_code=500)
        source.unlink(missing_ok=True)  # the upload is not kept once anonymized
        token = job.name
        results[token] = output
        faces = report.detections.get(jobs[0].rel, [])
        if not faces:  # a video: the faces of its first frame that had any
            frames = sorted((int(k.rsplit("#frame=", 1)[1]), v) for k, v in report.detections.items() if "#frame=" in k)
            faces = next((v for _, v in frames if v), [])
        video = suffix in VIDEO_EXTENSIONS
        fallback = f", {report.fallbacks} got the fallback blur" if report.fallbacks else ""
        summary = (f"{report.faces} face(s) anonymized with {method}{fallback}" if not video
                   else f"video anonymized with {method}: {report.faces} face(s) over all frames{fallback}")
        return {"result": f"/result/{token}", "name": f"anonymized-{Path(name).stem}{output.suffix}", "video": video,
                "faces": faces, "summary": summary, "warnings": [w.replace(str(source), name) for w in report.warnings]}

    @app.get("/result/{token}")
    def result(token: str):
        path = results.pop(token, None)
        if path is None or not path.is_file():
            return JSONResponse({"error": "no such result (each result can be fetched once)"}, status_code=404)
        # served once, then the job's folder is deleted
        return FileResponse(path, background=BackgroundTask(shutil.rmtree, path.parent, True))

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> None:
    try:
        import uvicorn
    except ImportError:
        raise UsageError("faceanon serve needs the web extra: pip install 'faceanon[serve]'") from None
    print(f"faceanon: serving on http://{host}:{port} (Ctrl-C stops)", flush=True)
    uvicorn.run(create_app(max_upload_mb), host=host, port=port, log_level="warning")
