"""Read/write stages, the CLI contract, bad input and fail-closed behaviour."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceanon.cli import main
from faceanon.errors import InputError
from faceanon.io import read_image, write_image
from faceanon.pipeline import Pipeline

LFW_FILES = ["Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0002.jpg",
             "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"]


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path, lfw_dir, celeba_face):
    """A folder of real images in nested folders, plus broken files."""
    root = tmp_path / "in"
    for rel in LFW_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw_dir / rel, root / rel)
    (root / "colour").mkdir()
    Image.fromarray(celeba_face).save(root / "colour" / "face.png")
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "notes.jpg").write_text("this is not an image")
    data = (root / LFW_FILES[0]).read_bytes()
    (root / "bad" / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "README.txt").write_text("ignored: not a media file")
    return root


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.err


def test_folder_is_mirrored_and_bad_files_are_reported(tree, tmp_path, capsys):
    before = {p: digest(p) for p in tree.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    code, err = run(capsys, "anonymize", tree, "-o", out, "--method", "pixelate", "--quiet")
    assert code == 1
    assert "Traceback" not in err
    error_lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 3
    for name, reason in [("empty.jpg", "empty file"), ("notes.jpg", "not an image"), ("truncated.jpg", "truncated")]:
        assert any(name in ln and reason in ln for ln in error_lines), (name, err)
    for rel in LFW_FILES + ["colour/face.png"]:
        assert (out / rel).is_file(), rel
    assert not (out / "bad").exists() or not any((out / "bad").iterdir())
    assert not list(out.rglob("*.part*"))  # no temporary files left
    # inputs untouched
    assert before == {p: digest(p) for p in tree.rglob("*") if p.is_file()}
    # the output differs from the input where the face is, greyscale stays greyscale
    a = np.asarray(Image.open(tree / LFW_FILES[0]))
    b = np.asarray(Image.open(out / LFW_FILES[0]))
    assert b.ndim == 2 and b.shape == a.shape
    assert np.abs(a[100:150, 100:150].astype(int) - b[100:150, 100:150]).mean() > 5
    assert Image.open(out / "colour/face.png").mode == "RGB"


def test_output_equal_to_input_is_refused(tree, capsys):
    src = tree / LFW_FILES[0]
    before = digest(src)
    code, err = run(capsys, "anonymize", src, "-o", src, "--quiet")
    assert code == 1 and "refusing to overwrite" in err
    code, err = run(capsys, "anonymize", tree, "-o", tree, "--quiet")
    assert code == 1 and "refusing to overwrite" in err
    assert digest(src) == before


def test_files_from_and_detect_json(tree, tmp_path, capsys):
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(LFW_FILES[:2]) + "\n")
    out = tmp_path / "out"
    code, _ = run(capsys, "anonymize", tree, "-o", out, "--files-from", lst, "--method", "blur", "--quiet")
    assert code == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.jpg")) == sorted(LFW_FILES[:2])

    js = tmp_path / "det.json"
    code, _ = run(capsys, "detect", tree, "--files-from", lst, "--json", js, "--quiet")
    assert code == 0
    data = json.loads(js.read_text())
    assert sorted(data) == sorted(LFW_FILES[:2])
    for faces in data.values():
        assert len(faces) >= 1 and all(len(f["box"]) == 4 for f in faces)
        x1, y1, x2, y2 = faces[0]["box"]
        assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250 and 0 < faces[0]["score"] <= 1


def test_single_file_to_named_output_and_params(tree, tmp_path, capsys):
    out = tmp_path / "masked.png"
    code, _ = run(capsys, "anonymize", tree / "colour/face.png", "-o", out, "--method", "mask", "--param",
                  "color=255,0,0", "--region", "box", "--quiet")
    assert code == 0
    img = np.asarray(Image.open(out))
    assert (img[128, 128] == [255, 0, 0]).all()  # the face centre of the 256x256 crop
    assert not (img[2, 2] == [255, 0, 0]).all()


def test_bad_arguments_are_one_line_errors(tree, tmp_path, capsys):
    code, err = run(capsys, "anonymize", tree, "-o", tmp_path / "o", "--method", "nope")
    assert code == 2 and "unknown method 'nope'" in err and "Traceback" not in err
    code, err = run(capsys, "anonymize", tree, "-o", tmp_path / "o", "--param", "k")
    assert code == 2 and "key=value" in err
    code, err = run(capsys, "anonymize", tmp_path / "missing.jpg", "-o", tmp_path / "o")
    assert code == 1 and "missing.jpg" in err


def test_methods_listing_json(capsys):
    assert main(["methods", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"blur", "pixelate", "mask", "noise", "edge", "superpixel"} <= set(listing)


def test_detection_failure_fails_closed(tree, tmp_path, capsys, monkeypatch):
    def broken(self, image):
        raise RuntimeError("simulated detector crash")

    monkeypatch.setattr(Pipeline, "detect", broken)
    out = tmp_path / "out"
    code, err = run(capsys, "anonymize", tree / LFW_FILES[0], "-o", out, "--quiet")
    assert code == 1 and "face detection failed" in err
    assert not out.exists() or not any(out.rglob("*.jpg"))
    code, err = run(capsys, "anonymize", tree / LFW_FILES[0], "-o", out, "--quiet", "--allow-unprocessed")
    assert code == 0 and (out / "Abel_Pacheco_0001.jpg").exists()


def test_exif_orientation_applied_and_metadata_stripped(tmp_path, lfw_face):
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    exif[0x010F] = "CameraMaker"
    gps = {1: "N", 2: (52.0, 31.0, 12.0)}
    exif[0x8825] = gps
    tall = lfw_face[:, :200]  # 250 x 200 so rotation is visible in the shape
    Image.fromarray(tall).save(src, exif=exif.tobytes())
    pic = read_image(src)
    assert pic.rgb.shape[:2] == (200, 250)  # rotated for display
    dst = tmp_path / "out.jpg"
    write_image(dst, pic)
    with Image.open(dst) as im:
        assert not im.getexif() and "exif" not in im.info
        assert im.size == (250, 200)
    write_image(tmp_path / "kept.jpg", pic, keep_metadata=True)
    with Image.open(tmp_path / "kept.jpg") as im:
        kept = im.getexif()
        assert kept[0x010F] == "CameraMaker" and kept.get(0x0112) == 1


@pytest.mark.parametrize("ext", [".png", ".webp", ".bmp", ".tiff"])
def test_formats_round_trip(tmp_path, celeba_face, ext):
    src = tmp_path / f"face{ext}"
    Image.fromarray(celeba_face).save(src)
    pic = read_image(src)
    assert pic.rgb.shape == celeba_face.shape
    write_image(tmp_path / f"out{ext}", pic)
    assert read_image(tmp_path / f"out{ext}").rgb.shape == celeba_face.shape


def test_alpha_channel_is_preserved(tmp_path, celeba_face):
    rgba = np.dstack([celeba_face, np.full(celeba_face.shape[:2], 77, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", pic)
    assert np.asarray(Image.open(tmp_path / "b.png"))[..., 3].max() == 77


def test_pixel_limit_and_unsupported_type(tmp_path, celeba_face):
    src = tmp_path / "face.png"
    Image.fromarray(celeba_face).save(src)
    with pytest.raises(InputError, match="over the limit"):
        read_image(src, max_pixels=1000)
    gif = tmp_path / "face.gif"
    Image.fromarray(celeba_face).save(gif)
    with pytest.raises(InputError, match="unsupported file type"):
        read_image(gif)


def test_fit_round_trip_through_files(tmp_path, lfw_dir, celeba_face):
    """anonymize --method fit, then deanonymize: the right password restores the original
    (exactly where the payload is kept), a wrong one gives another face, inputs untouched."""
    from faceanon.evaluate import metrics

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(lfw_dir / LFW_FILES[0], src / "a.jpg")
    Image.fromarray(celeba_face).save(src / "b.png")
    before = {p.name: digest(p) for p in src.iterdir()}
    assert main(["anonymize", str(src), "-o", str(tmp_path / "anon"), "--method", "fit", "--password", "pw", "-q"]) == 0
    assert main(["deanonymize", str(tmp_path / "anon"), "-o", str(tmp_path / "right"), "--password", "pw", "-q"]) == 0
    assert main(["deanonymize", str(tmp_path / "anon"), "-o", str(tmp_path / "wrong"), "--password", "nope", "-q"]) == 0
    assert before == {p.name: digest(p) for p in src.iterdir()}
    for name in ("a.jpg", "b.png"):
        orig = read_image(src / name).rgb
        anon = read_image(tmp_path / "anon" / name).rgb
        right = read_image(tmp_path / "right" / name).rgb
        wrong = read_image(tmp_path / "wrong" / name).rgb
        assert metrics.ssim(orig, anon) < 0.95
        assert metrics.ssim(orig, right) > 0.99
        assert metrics.ssim(orig, wrong) < 0.95 and not np.array_equal(wrong, anon)
    # without the payload only the image-only inverse is possible: approximate, but not the anonymized face
    assert main(["anonymize", str(src / "b.png"), "-o", str(tmp_path / "np.png"), "--method", "fit", "--password", "pw",
                 "--param", "payload=false", "-q"]) == 0
    assert main(["deanonymize", str(tmp_path / "np.png"), "-o", str(tmp_path / "np_back.png"), "--password", "pw", "-q"]) == 0
    orig = read_image(src / "b.png").rgb
    assert metrics.ssim(orig, read_image(tmp_path / "np_back.png").rgb) > metrics.ssim(orig, read_image(tmp_path / "np.png").rgb)


def test_payload_trailer_survives_format_and_rejects_wrong_password(tmp_path, celeba_face):
    from faceanon.io.images import Picture
    from faceanon.io.payload import Region, open_sealed, read_trailer, seal

    region = Region(3, 5, celeba_face[10:40, 20:60].copy())
    for ext in (".jpg", ".png", ".webp", ".tif", ".bmp"):
        path = tmp_path / f"x{ext}"
        write_image(path, Picture(celeba_face), trailer=seal([region], "pw"))
        assert read_image(path).rgb.shape == celeba_face.shape  # still a valid image
        got = open_sealed(read_trailer(path), "pw")
        assert got is not None and np.array_equal(got.regions[0].pixels, region.pixels)
        assert (got.regions[0].x, got.regions[0].y) == (3, 5)
        assert open_sealed(read_trailer(path), "pw2") is None
    plain = tmp_path / "plain.png"
    write_image(plain, Picture(celeba_face))
    assert read_trailer(plain) is None


def test_wrong_password_gives_the_image_only_inverse_with_a_warning(tmp_path, celeba_face, capsys):
    Image.fromarray(celeba_face).save(tmp_path / "in.png")
    assert main(["anonymize", str(tmp_path / "in.png"), "-o", str(tmp_path / "anon.png"), "--method", "fit",
                 "--password", "pw", "-q"]) == 0
    assert main(["deanonymize", str(tmp_path / "anon.png"), "-o", str(tmp_path / "back.png"), "--password", "pw2",
                 "-q"]) == 0
    assert "does not open its recovery payload" in capsys.readouterr().err
    assert read_image(tmp_path / "back.png").rgb.shape == celeba_face.shape


def test_missing_payload_is_reported_only_for_methods_that_write_one(tmp_path, celeba_face, capsys):
    Image.fromarray(celeba_face).save(tmp_path / "in.png")
    for method, extra, warned in (("fit", ["--param", "payload=false"], True), ("fit-net", [], False)):
        anon, back = tmp_path / f"{method}.png", tmp_path / f"{method}_back.png"
        assert main(["anonymize", str(tmp_path / "in.png"), "-o", str(anon), "--method", method, "--password", "pw",
                     "-q"] + extra) == 0
        capsys.readouterr()
        assert main(["deanonymize", str(anon), "-o", str(back), "--method", method, "--password", "pw", "-q"]) == 0
        assert ("carries no payload" in capsys.readouterr().err) == warned, method
