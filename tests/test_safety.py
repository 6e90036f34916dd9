"""The safety guarantees the README states, one test (or family) each: every method x detector
fails closed, a method that cannot run says so, option values are checked before any file is
read, malformed files give one-line errors, interrupted folder runs resume, and the `fit`
recovery payload is sealed as documented."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import faceanon
from faceanon.anonymize import ANONYMIZERS
from faceanon.cli import main
from faceanon.detect import DETECTORS, create_detector
from faceanon.errors import CannotAnonymize, FaceanonError, InputError, UsageError
from faceanon.io import read_image
from faceanon.io.manifest import MANIFEST_NAME
from faceanon.pipeline import Pipeline, PipelineConfig

REPO = Path(__file__).resolve().parents[1]
# Methods that need a setting to run at all; everything else runs at its defaults.
REQUIRED = {"fit": {"password": "pw"}, "fit-net": {"password": "pw"}}
# Cheaper settings for the slow iterative methods: the guarantee does not depend on step counts.
QUICK = {"pgd": {"steps": 2}, "adversarial": {"steps": 2}, "falco": {"steps": 20}}


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def mean_change(before: np.ndarray, after: np.ndarray, box) -> float:
    """Mean over the face box of the largest per-channel change, in 0-255 levels."""
    h, w = before.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    d = np.abs(before[y1:y2, x1:x2].astype(int) - after[y1:y2, x1:x2].astype(int)).max(axis=2)
    return float(d.mean())


@pytest.fixture(scope="module")
def photo(lfw_dir, celeba_face) -> np.ndarray:
    """Two real faces side by side: a greyscale LFW photo and a colour CelebA crop (people whose
    new faces the recognizer gate lets through: tests that need a drawn face use them)."""
    lfw = np.asarray(Image.open(lfw_dir / "Adrien_Brody" / "Adrien_Brody_0001.jpg").convert("RGB"))
    celeba = np.asarray(Image.fromarray(celeba_face).resize((250, 250)))
    return np.ascontiguousarray(np.concatenate([lfw, celeba], axis=1))


@pytest.fixture(scope="module")
def detections(photo) -> dict:
    found = {}
    for name in DETECTORS.names():
        found[name] = create_detector(name)(photo)
    return found


@pytest.mark.parametrize("detector", DETECTORS.names())
@pytest.mark.parametrize("method", ANONYMIZERS.names())
def test_every_method_with_every_detector_changes_every_face(method, detector, photo, detections):
    """Fail closed, for every registered pair: each detected face region differs from the input,
    and each face says what it got. Box-only detectors (dlib) get landmarks, so methods that
    need them (fgsm, pgd, the identity engines) run themselves rather than fall back."""
    faces = [faceanon.Face(f.box, f.score, f.landmarks5) for f in detections[detector]]
    assert faces, f"{detector} found no face in the test photo"
    params = {**REQUIRED.get(method, {}), **QUICK.get(method, {})}
    pipe = Pipeline(PipelineConfig(method=method, params=params, detector=detector))
    out, used = pipe.anonymize(photo, faces)
    for face in used:
        assert mean_change(photo, out, face.box) >= 1.0, (method, detector, face.to_dict())
        assert face.extra["method"] in (method, "blur"), face.extra
    if method in ("fgsm", "pgd") and detector in ("dlib-hog", "dlib-mmod"):
        # the issue's case: these used to return the face unchanged and count it as done
        assert all(f.extra["method"] == method for f in used), [f.extra for f in used]


def test_a_method_that_cannot_run_on_a_face_reports_it_and_the_fallback_hides_it(photo, detections, monkeypatch,
                                                                                 tmp_path, capsys):
    faces = detections["yunet"]
    pipe = Pipeline(PipelineConfig(method="pixelate"))

    def cannot(self, crop, face, rng):
        raise CannotAnonymize("profile face beyond the engine's yaw range")

    monkeypatch.setattr(type(pipe.anonymizer), "apply", cannot)
    out, used = pipe.anonymize(photo, [faceanon.Face(f.box, f.score, f.landmarks5) for f in faces])
    for face in used:
        assert face.extra == {"method": "blur", "fallback": "profile face beyond the engine's yaw range"}
        assert mean_change(photo, out, face.box) >= 1.0

    # a method returning the face untouched is caught too, and the CLI says so per file and in its JSON
    monkeypatch.setattr(type(pipe.anonymizer), "apply", lambda self, crop, face, rng: crop.copy())
    Image.fromarray(photo).save(tmp_path / "two.png")
    code = main(["anonymize", str(tmp_path / "two.png"), "-o", str(tmp_path / "out.png"), "--method", "pixelate",
                 "--json", str(tmp_path / "faces.json"), "-q"])
    err = capsys.readouterr().err
    assert code == 0
    assert "got the fallback filter (2 x the method left the face unchanged)" in err
    record = json.loads((tmp_path / "faces.json").read_text())["two.png"]
    assert [f["method"] for f in record] == ["blur", "blur"]
    assert all(f["fallback"] == "the method left the face unchanged" for f in record)


def test_a_flat_patch_that_no_filter_can_change_is_no_fallback():
    """Recall-first detectors fire on plain patches (a night sky, a wall): the blur cannot change
    them and neither can the fallback, so the face counts as done, without a warning."""
    flat = np.full((200, 200, 3), 90, np.uint8)
    _, used = Pipeline(PipelineConfig(method="blur")).anonymize(flat, [faceanon.Face([50, 50, 120, 130], 0.1)])
    assert used[0].extra == {"method": "blur"}


def test_a_crashing_method_falls_back_instead_of_leaving_the_face(photo, detections, monkeypatch):
    pipe = Pipeline(PipelineConfig(method="noise"))
    monkeypatch.setattr(type(pipe.anonymizer), "apply", lambda *a: 1 / 0)
    out, used = pipe.anonymize(photo, [faceanon.Face(f.box, f.score, f.landmarks5) for f in detections["yunet"]])
    assert all(f.extra["fallback"].startswith("noise failed (ZeroDivisionError") for f in used)
    assert all(mean_change(photo, out, f.box) >= 1.0 for f in used)


# ---- parameters and options: typed, ranged, one-line errors ----------------------------------

def _any_value():
    return st.one_of(st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=12), st.sampled_from(["nan", "inf", "-inf", "1e999", "", " ", "0x10", "3,4"]))


COMPONENTS = [(ANONYMIZERS, name, key) for name in ANONYMIZERS.names() for key in ANONYMIZERS.get(name).params] + \
             [(DETECTORS, name, key) for name in DETECTORS.names() for key in DETECTORS.get(name).params]


@pytest.mark.parametrize("registry,name,key", COMPONENTS, ids=[f"{n}.{k}" for _, n, k in COMPONENTS])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_any_value())
def test_every_parameter_is_typed_and_ranged(registry, name, key, value):
    """Any value either parses into the declared type and range, or fails with one line that
    names the parameter; never another exception."""
    spec = registry.get(name).params[key]
    try:
        parsed = registry.parse_params(name, {key: value if not isinstance(value, float) else str(value)})[key]
    except UsageError as e:
        assert "\n" not in str(e) and key in str(e)
        return
    if spec.type in (int, float):
        assert isinstance(parsed, spec.type) and np.isfinite(parsed)
        assert spec.low is None or (parsed > spec.low if spec.low_open else parsed >= spec.low)
        assert spec.high is None or (parsed < spec.high if spec.high_open else parsed <= spec.high)
    elif spec.type is tuple:
        assert all(spec.low <= v <= spec.high for v in parsed)


@pytest.mark.parametrize("registry,name,key", [c for c in COMPONENTS if c[0].get(c[1]).params[c[2]].low is not None],
                         ids=lambda c: str(c) if isinstance(c, str) else "")
def test_values_just_outside_a_range_are_refused(registry, name, key):
    spec = registry.get(name).params[key]
    outside = [spec.low - 1] + ([spec.high + 1] if spec.high is not None else [])
    for v in outside:
        text = ",".join([str(v)] * spec.min_length) if spec.type is tuple else str(v)
        with pytest.raises(UsageError, match=rf"{key}: must be .* \(got "):
            registry.parse_params(name, {key: text})


OPTIONS = [("--quality", 1, 100), ("--mask-scale", 0.5, 4), ("--seed", 0, 2**32 - 1), ("--max-pixels", 1, 10**10)]


@pytest.mark.parametrize("option,low,high", OPTIONS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.integers(-10**11, 10**11), st.floats(allow_nan=True, allow_infinity=True)))
def test_cli_options_are_checked_before_any_file_is_read(option, low, high, value, tmp_path_factory, capsys):
    """A bad value exits 2 with one line naming the option, before the (missing) input is
    looked at; a good value gets as far as the input and fails there with status 1."""
    missing = tmp_path_factory.mktemp("o") / "missing.jpg"
    text = str(int(value)) if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                                         and option != "--mask-scale") else str(value)
    try:
        code = main(["anonymize", str(missing), "-o", str(missing.parent / "out.jpg"), option, text, "-q"])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    ok = np.isfinite(value) and low <= float(text) <= high and (option == "--mask-scale" or float(text).is_integer())
    if ok:
        assert code == 1 and "missing.jpg" in err
    else:
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"faceanon: error: {option}: "), err
        assert "missing.jpg" not in err


def test_the_issue_example_is_exactly_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["anonymize", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "y.jpg"), "--quality", "500"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["faceanon: error: --quality: must be 1..100 (got 500) "
                                                    "(see faceanon anonymize --help)"]


# ---- malformed inputs ---------------------------------------------------------------------------

def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (valid CRC) over a tiny body."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def encoded(celeba_face) -> dict[str, bytes]:
    out = {}
    for ext, fmt in ((".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".tif", "TIFF"), (".bmp", "BMP")):
        import io

        buf = io.BytesIO()
        Image.fromarray(celeba_face[:96, :96]).save(buf, format=fmt)
        out[ext] = buf.getvalue()
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from([".jpg", ".png", ".webp", ".tif", ".bmp"]), data=st.data())
def test_malformed_images_decode_or_give_one_clear_error(ext, data, encoded, tmp_path_factory):
    raw = bytearray(encoded[ext])
    how = data.draw(st.sampled_from(["truncate", "flip", "header", "garbage"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "header":
        raw[: 16] = data.draw(st.binary(min_size=16, max_size=16))
    else:
        raw = bytearray(data.draw(st.binary(max_size=300)))
    path = tmp_path_factory.mktemp("m") / f"x{ext}"
    path.write_bytes(bytes(raw))
    try:
        picture = read_image(path)
    except InputError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    assert picture.rgb.dtype == np.uint8 and picture.rgb.ndim == 3 and picture.rgb.shape[2] == 3


def test_odd_channel_counts_and_depths_are_read_as_rgb(tmp_path, celeba_face):
    grey = celeba_face[..., 0]
    cases = {
        "la.png": Image.fromarray(np.dstack([grey, grey]), "LA"),
        "rgba.png": Image.fromarray(np.dstack([celeba_face, grey]), "RGBA"),
        "i16.png": Image.fromarray(grey.astype(np.uint16) * 257),
        "cmyk.jpg": Image.fromarray(celeba_face).convert("CMYK"),
        "p.png": Image.fromarray(celeba_face).convert("P"),
        "bilevel.tif": Image.fromarray(grey).convert("1"),
        "float.tif": Image.fromarray(grey.astype(np.float32)),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        rgb = read_image(tmp_path / name).rgb
        assert rgb.shape == celeba_face.shape and rgb.dtype == np.uint8, name


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory, lfw_dir) -> bytes:
    from faceanon.io.video import write_frames

    frame = np.asarray(Image.open(lfw_dir / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg").convert("RGB"))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_frames(path, [frame, frame[::-1].copy(), frame], fps=5)
    return path.read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_malformed_videos_transcode_or_give_one_clear_error(clip_bytes, data, tmp_path_factory):
    from faceanon.io.video import transcode

    raw = bytearray(clip_bytes)
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=6)):
            raw[at] ^= data.draw(st.integers(1, 255))
    folder = tmp_path_factory.mktemp("v")
    (folder / "in.mp4").write_bytes(bytes(raw))
    try:
        transcode(folder / "in.mp4", folder / "out.mp4", lambda frame, i: frame)
    except InputError as e:
        assert str(e).startswith(str(folder / "in.mp4")) and "\n" not in str(e)
        assert not (folder / "out.mp4").exists()
    assert not [p for p in folder.iterdir() if ".part" in p.name]


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory, encoded, lfw_dir):
    """Real files beside malformed ones (images and videos)."""
    from faceanon.io.video import write_frames

    root = tmp_path_factory.mktemp("bad")
    shutil.copy(lfw_dir / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg", root / "good.jpg")
    (root / "huge.png").write_bytes(_png_with_size(200_000, 200_000))
    (root / "zero_width.png").write_bytes(_png_with_size(0, 10))
    (root / "truncated.png").write_bytes(encoded[".png"][:200])
    (root / "wrong_header.jpg").write_bytes(b"GIF89a" + encoded[".jpg"][6:])
    (root / "png_named.webp").write_bytes(encoded[".png"])  # a real image with the wrong extension
    frame = np.asarray(Image.open(lfw_dir / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg").convert("RGB"))
    write_frames(root / "clip.mp4", [frame] * 4, fps=5)
    clip = (root / "clip.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(clip[: len(clip) // 3])
    (root / "garbage.mp4").write_bytes(os.urandom(5000))
    (root / "empty.mov").write_bytes(b"")
    return root


def test_a_folder_of_malformed_files_gives_one_line_per_bad_file_and_goes_on(bad_folder, tmp_path):
    before = {p.name: digest(p) for p in bad_folder.iterdir()}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "faceanon", "anonymize", str(bad_folder), "-o", str(out), "-q"],
                          capture_output=True, text=True, cwd=REPO)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    failed = {"huge.png", "zero_width.png", "truncated.png", "wrong_header.jpg", "truncated.mp4", "garbage.mp4",
              "empty.mov"}
    for name in failed:
        assert sum(name in ln for ln in errors) == 1, (name, proc.stderr)
        assert not (out / name).exists()
    assert (out / "good.jpg").exists() and (out / "clip.mp4").exists() and (out / "png_named.webp").exists()
    assert not [p for p in out.iterdir() if ".part" in p.name]
    assert before == {p.name: digest(p) for p in bad_folder.iterdir()}  # inputs untouched


# ---- interrupted folder runs ---------------------------------------------------------------------

def _done_lines(out: Path) -> list[dict]:
    path = out / MANIFEST_NAME
    if not path.exists():
        return []
    lines = []
    for ln in path.read_text().splitlines():
        try:
            entry = json.loads(ln)
        except ValueError:
            continue
        if entry.get("status") == "done":
            lines.append(entry)
    return lines


def _outputs(out: Path) -> list[Path]:
    return [p for p in out.glob("*.png") if not p.name.startswith(".")]


def _run_until(cmd: list[str], out: Path, done: int, sig: int) -> tuple[int, str]:
    """Start ``cmd``, send ``sig`` once the manifest lists ``done`` finished files; its exit
    status and standard error."""
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and len(_done_lines(out)) < done and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_an_interrupted_folder_run_leaves_no_partial_output_and_resumes(tmp_path, city):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(24):
        Image.fromarray(city).save(src / f"{i:02d}.png")  # PNG: slow enough to catch mid-way
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "faceanon", "anonymize", str(src), "-o", str(out), "--method", "pixelate", "-q"]

    # SIGTERM (a scheduler stopping the job): exits 130, cleans its temporary file
    code, err = _run_until(cmd, out, 2, signal.SIGTERM)
    assert "Traceback" not in err
    if code == 0:
        pytest.skip("this machine finished 24 images before the first two were recorded")
    assert code == 130 and "interrupted" in err
    assert not [p for p in out.iterdir() if ".part" in p.name]

    # SIGKILL (no chance to clean up): whatever is on disk is whole
    _run_until(cmd, out, len(_done_lines(out)) + 2, signal.SIGKILL)
    (out / ".99.abcd_123.part.png").write_bytes(b"half a file")  # what a kill mid-write leaves
    finished = {e["input"]: os.stat(out / e["input"]).st_mtime_ns for e in _done_lines(out)}
    assert finished
    for p in _outputs(out):
        Image.open(p).load()  # every visible output is a complete image

    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"24/24 file(s) done ({len(finished)} done by an earlier run, skipped)" in rerun.stderr
    assert sorted(p.name for p in _outputs(out)) == sorted(p.name for p in src.iterdir())
    assert {rel: os.stat(out / rel).st_mtime_ns for rel in finished} == finished  # not redone
    assert not [p for p in out.iterdir() if ".part" in p.name]
    for p in _outputs(out):
        Image.open(p).load()
    # other settings, or --redo, do everything again
    again = subprocess.run(cmd[:-1] + ["--param", "blocks=6", "-q"], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and "skipped" not in again.stderr


def test_the_manifest_lists_every_file_with_its_status_and_no_password(tmp_path, lfw_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(lfw_dir / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg", src / "a.jpg")
    (src / "b.jpg").write_text("not an image")
    out = tmp_path / "out"
    assert main(["anonymize", str(src), "-o", str(out), "--method", "fit", "--password", "secret-pw", "-q"]) == 1
    text = (out / MANIFEST_NAME).read_text()
    assert "secret-pw" not in text
    entries = {e["input"]: e for e in map(json.loads, text.splitlines()) if "input" in e}
    assert entries["a.jpg"]["status"] == "done" and entries["a.jpg"]["faces"] == 1
    # fit, or its fallback where the recognizer gate still knew the person
    assert sum(entries["a.jpg"]["methods"].values()) == 1 and set(entries["a.jpg"]["methods"]) <= {"fit", "blur"}
    assert entries["a.jpg"]["sha256"] == digest(src / "a.jpg")
    assert entries["b.jpg"]["status"] == "error" and "not an image" in entries["b.jpg"]["error"]
    # the failed file is retried on a rerun, the finished one is not
    assert main(["anonymize", str(src), "-o", str(out), "--method", "fit", "--password", "secret-pw", "-q"]) == 1
    assert "1 done by an earlier run" in capsys.readouterr().err


# ---- the fit recovery payload ----------------------------------------------------------------------

def test_the_key_derivation_is_memory_hard_with_the_stated_parameters():
    from faceanon.io import payload

    assert (payload.SCRYPT_N, payload.SCRYPT_R, payload.SCRYPT_P) == (2**15, 8, 1)  # the README states these
    needed = 128 * payload.SCRYPT_N * payload.SCRYPT_R
    assert needed == 32 * 2**20
    with pytest.raises(ValueError):  # OpenSSL refuses to run scrypt in less memory than it needs
        hashlib.scrypt(b"pw", salt=b"s" * 16, n=payload.SCRYPT_N, r=payload.SCRYPT_R, p=payload.SCRYPT_P,
                       maxmem=needed // 2)
    assert len(payload.derive_key("pw", b"s" * 16)) == 32


def test_every_seal_has_a_fresh_salt_and_nonce():
    from faceanon.io.payload import MAGIC, Region, seal

    region = [Region(0, 0, np.full((4, 4, 3), 7, np.uint8))]
    a, b = seal(region, "pw", (8, 8)), seal(region, "pw", (8, 8))
    head = len(MAGIC) + 6
    salt_a, nonce_a = a[head : head + 16], a[head + 16 : head + 28]
    salt_b, nonce_b = b[head : head + 16], b[head + 16 : head + 28]
    assert salt_a != salt_b and nonce_a != nonce_b and a[head + 28 :] != b[head + 28 :]


@pytest.fixture(scope="module")
def fit_file(tmp_path_factory, celeba_face):
    root = tmp_path_factory.mktemp("fit")
    Image.fromarray(celeba_face).save(root / "in.png")
    assert main(["anonymize", str(root / "in.png"), "-o", str(root / "anon.png"), "--method", "fit",
                 "--password", "pw", "-q"]) == 0
    return root / "anon.png"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_or_truncated_payload_is_an_error_never_a_wrong_face(fit_file, data, tmp_path_factory):
    from faceanon.io.payload import MAGIC, PayloadError, open_sealed, read_trailer

    raw = bytearray(fit_file.read_bytes())
    image_end = raw.index(b"IEND") + 8  # the payload follows the PNG's last chunk
    if data.draw(st.booleans()):  # cut anywhere after the payload's first line
        raw = raw[: data.draw(st.integers(image_end + len(MAGIC), len(raw) - 1))]
    else:  # one byte changed anywhere in the payload, its checksum, length or trailer
        at = data.draw(st.integers(image_end, len(raw) - 1))
        raw[at] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("t") / "anon.png"
    path.write_bytes(bytes(raw))
    with pytest.raises(PayloadError) as e:
        sealed = read_trailer(path)
        open_sealed(sealed, "pw")
    assert "\n" not in str(e.value) and "recovery payload" in str(e.value)


def test_deanonymize_refuses_a_damaged_payload_with_one_line(fit_file, tmp_path, capsys):
    raw = bytearray(fit_file.read_bytes())
    raw[-300] ^= 0x5A
    (tmp_path / "damaged.png").write_bytes(bytes(raw))
    (tmp_path / "cut.png").write_bytes(fit_file.read_bytes()[:-40])
    for name, reason in (("damaged.png", "damaged (checksum mismatch)"), ("cut.png", "truncated")):
        code = main(["deanonymize", str(tmp_path / name), "-o", str(tmp_path / f"back_{name}"), "--password", "pw",
                     "-q"])
        err = capsys.readouterr().err
        assert code == 1 and reason in err and "nothing written" in err and "Traceback" not in err
        assert not (tmp_path / f"back_{name}").exists()


def test_a_payload_on_a_resized_image_is_refused(fit_file, tmp_path, capsys):
    from faceanon.io.payload import read_trailer

    small = tmp_path / "small.png"
    Image.open(fit_file).resize((128, 128)).save(small)
    with open(small, "ab") as f:  # the payload moved onto another image
        from faceanon.io.payload import TRAILER

        sealed = read_trailer(fit_file)
        import struct

        f.write(sealed + hashlib.sha256(sealed).digest() + struct.pack(">Q", len(sealed)) + TRAILER)
    code = main(["deanonymize", str(small), "-o", str(tmp_path / "back.png"), "--password", "pw", "-q"])
    assert code == 1 and "resized or cropped" in capsys.readouterr().err
    assert not (tmp_path / "back.png").exists()


# ---- identity engines paint new faces only where it is safe --------------------------------------

@pytest.mark.parametrize("method", ["cfa", "fit"])
def test_identity_engines_paint_no_face_on_a_non_face_and_say_why(method, photo, detections):
    """The face's box and landmarks moved onto a patch of wall (no face there): the render gate
    refuses it, the fallback blur covers the region, and the reason is reported; a face under
    24 px is refused as too small. The real faces beside them are rendered."""
    wall = photo.copy()
    wall[:, 250:] = np.asarray(Image.fromarray(photo[:40, :40]).resize((250, 250)))  # no face on the right
    faces = [faceanon.Face(f.box, f.score, f.landmarks5) for f in detections["yunet"]]
    tiny = faceanon.Face(faces[0].box * 0.15 + 5, 0.9, faces[0].landmarks5 * 0.15 + 5)
    pipe = Pipeline(PipelineConfig(method=method, params=REQUIRED.get(method, {})))
    out, used = pipe.anonymize(wall, faces + [tiny])
    reported = [{k: f.to_dict()[k] for k in ("method", "fallback") if k in f.to_dict()} for f in used]
    by_side = {("left" if f.center[0] < 250 else "right") if f.height >= 24 else "tiny": r for f, r in zip(used, reported)}
    assert by_side["left"] == {"method": method}
    assert by_side["right"] == {"method": "blur", "fallback": "not a face to a second detector family (MTCNN O-Net)"}
    assert by_side["tiny"] == {"method": "blur", "fallback": "too small to render (under 24 px)"}
    assert all(mean_change(wall, out, f.box) >= 1.0 for f in used if f.height >= 24 and f.center[0] < 250)  # the rest is flat


def test_a_face_the_verifier_doubts_gets_the_fallback_and_the_reason(photo, detections):
    """An ensemble detection carries the verifier's face probability: under the render gate's
    MIN_VERIFIER no new face is drawn, even on a real face the other checks would pass."""
    from faceanon.anonymize.render_gate import MIN_VERIFIER

    face = max(detections["yunet"], key=lambda f: f.score)
    got = {}
    for verifier in (MIN_VERIFIER / 2, 0.9):
        f = faceanon.Face(face.box, face.score, face.landmarks5, extra={"verifier": verifier})
        _, used = Pipeline(PipelineConfig(method="cfa")).anonymize(photo, [f])
        got[verifier] = {k: used[0].to_dict()[k] for k in ("method", "fallback") if k in used[0].to_dict()}
    assert got[0.9] == {"method": "cfa"}
    assert got[MIN_VERIFIER / 2] == {"method": "blur", "fallback": f"doubted by the face/not-face verifier (under {MIN_VERIFIER})"}


def test_a_profile_the_landmark_fit_squares_up_gets_the_fallback(wider_dir):
    """A man in profile in a WIDER photo: the 68-point fit squares his face up (its jaw reading
    says nearly frontal), the detector's own points keep his nose beside both eyes; he gets the
    blur, turned too far aside, not a frontal face painted across his cheek and hair."""
    from faceanon.anonymize.render_gate import MAX_TURN, turn

    photo = read_image(wider_dir / "images" / "10--People_Marching" /
                       "10_People_Marching_People_Marching_10_People_Marching_People_Marching_10_848.jpg").rgb
    pipe = Pipeline(PipelineConfig(method="cfa"))
    faces = pipe.add_landmarks(photo, pipe.detect(photo))
    profile = [f for f in faces if f.box[0] < 786 < f.box[2] and f.box[1] < 166 < f.box[3]]
    assert len(profile) == 1 and abs(turn(profile[0])) < MAX_TURN
    _, used = pipe.anonymize(photo, profile)
    assert {k: used[0].to_dict()[k] for k in ("method", "fallback")} == {
        "method": "blur", "fallback": "turned too far aside to render"}


def test_a_face_one_ensemble_member_alone_found_gets_the_fallback(photo, detections):
    """No new face where only one of the ensemble's detector families saw a face: the same real
    face is drawn on when both found it."""
    face = max(detections["yunet"], key=lambda f: f.score)
    got = {}
    for votes in ((0,), (0, 1)):
        f = faceanon.Face(face.box, face.score, face.landmarks5, extra={"votes": list(votes), "verifier": 0.9})
        _, used = Pipeline(PipelineConfig(method="cfa")).anonymize(photo, [f])
        got[votes] = {k: used[0].to_dict()[k] for k in ("method", "fallback") if k in used[0].to_dict()}
    assert got[(0, 1)] == {"method": "cfa"}
    assert got[(0,)] == {"method": "blur", "fallback": "found by one detector of the ensemble only"}


def test_a_stray_box_blurred_beside_a_drawn_face_leaves_no_blurred_hole_in_it(photo, detections):
    """Recall-first detectors put weak boxes on an ear or half a face; that box gets the blur,
    and the new face is drawn from the untouched picture and laid over it. So the middle of the
    drawn face is the same with or without the stray box, and the stray box is still hidden
    where the new face does not cover it."""
    face = max(detections["yunet"], key=lambda f: f.score)
    x1, y1, x2, y2 = face.box
    w = x2 - x1
    stray_box = np.array([x1 + 0.55 * w, y1, x2 + 0.45 * w, y2], np.float32)  # right half and beyond
    pipe = Pipeline(PipelineConfig(method="cfa"))
    alone, _ = pipe.anonymize(photo, [faceanon.Face(face.box, 0.95, face.landmarks5)])
    both, used = pipe.anonymize(photo, [faceanon.Face(face.box, 0.95, face.landmarks5),
                                        faceanon.Face(stray_box, 0.1, face.landmarks5 + [0.55 * w, 0])])
    assert [f.extra["method"] for f in used] == ["cfa", "blur"]
    cx, cy, r = int((x1 + x2) / 2), int((y1 + y2) / 2), int(0.2 * w)
    assert np.array_equal(both[cy - r:cy + r, cx - r:cx + r], alone[cy - r:cy + r, cx - r:cx + r])
    outside = (slice(int(y1 + 0.3 * (y2 - y1)), int(y2 - 0.3 * (y2 - y1))), slice(int(x2 + 0.15 * w), int(x2 + 0.35 * w)))
    part = photo[outside]
    assert mean_change(part, both[outside], (0, 0, part.shape[1], part.shape[0])) > 1.0
