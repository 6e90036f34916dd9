"""Videos: frame by frame, timing kept, audio copied on request, broken files reported."""

import av
import numpy as np
import pytest

from faceanon.cli import main
from faceanon.io.video import probe, read_frames
from faceanon.pipeline import Pipeline

FPS = 15
N_FRAMES = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory, lfw_face):
    """A 12-frame 320x240 clip of an LFW face sliding right, with a sine-wave AAC track."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    out = av.open(str(path), "w")
    v = out.add_stream("libx264", rate=FPS)
    v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
    a = out.add_stream("aac", rate=44100)
    for i in range(N_FRAMES):
        canvas = np.full((240, 320, 3), 90, np.uint8)
        canvas[:, 3 * i : 3 * i + 250][:, :, :] = lfw_face[5:245, : min(250, 320 - 3 * i)]
        for p in v.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
            out.mux(p)
    samples = 44100 * N_FRAMES // FPS
    t = np.arange(samples) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    for start in range(0, samples, 1024):
        chunk = np.ascontiguousarray(tone[:, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
        frame.sample_rate = 44100
        frame.pts = start
        for p in a.encode(frame):
            out.mux(p)
    for s in (v, a):
        for p in s.encode(None):
            out.mux(p)
    out.close()
    return path


def test_video_is_anonymized_with_timing_and_audio(clip, tmp_path, capsys):
    out = tmp_path / "out" / "clip.mp4"
    code = main(["anonymize", str(clip), "-o", str(out), "--method", "mask", "--keep-audio", "--quiet"])
    assert code == 0, capsys.readouterr().err
    src, dst = probe(clip), probe(out)
    assert dst.has_audio and (dst.width, dst.height) == (320, 240)
    assert abs(dst.fps - src.fps) < 0.01
    frames_in, frames_out = list(read_frames(clip)), list(read_frames(out))
    assert len(frames_out) == len(frames_in) == N_FRAMES
    for i, (a, b) in enumerate(zip(frames_in, frames_out)):
        cy, cx = 120, 3 * i + 125  # the face centre moves 3 px per frame
        assert b[cy - 10 : cy + 10, cx - 10 : cx + 10].mean() < 20, f"frame {i} not masked"
        assert np.abs(a[:, -5:].astype(int) - b[:, -5:]).mean() < 6  # far from the face: unchanged
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_video_without_keep_audio_has_no_audio(clip, tmp_path, capsys):
    out = tmp_path / "silent.mp4"
    assert main(["anonymize", str(clip), "-o", str(out), "--quiet"]) == 0
    assert not probe(out).has_audio


def test_broken_video_is_reported_and_batch_goes_on(clip, tmp_path, capsys, lfw_dir):
    src = tmp_path / "in"
    src.mkdir()
    data = clip.read_bytes()
    (src / "broken.mp4").write_bytes(data[: len(data) // 4])
    (src / "garbage.mkv").write_bytes(b"\x00" * 1000)
    (src / "face.jpg").write_bytes((lfw_dir / "Abel_Pacheco/Abel_Pacheco_0001.jpg").read_bytes())
    code = main(["anonymize", str(src), "-o", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "garbage.mkv" in err and "broken.mp4" in err
    assert (tmp_path / "out" / "face.jpg").exists()
    assert not (tmp_path / "out" / "garbage.mkv").exists()


def test_video_frames_fail_closed(clip, tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    real = Pipeline.detect

    def flaky(self, image):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("simulated crash")
        return real(self, image)

    monkeypatch.setattr(Pipeline, "detect", flaky)
    out = tmp_path / "closed.mp4"
    code = main(["anonymize", str(clip), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "blacked out" in err
    frames = list(read_frames(out))
    assert len(frames) == N_FRAMES
    for i, f in enumerate(frames):
        if (i + 1) % 3 == 0:
            assert f.mean() < 5, f"failed frame {i} was not blacked out"


@pytest.mark.parametrize("ext", [".avi", ".mkv", ".mov"])
def test_other_containers(clip, tmp_path, ext):
    out = tmp_path / f"clip{ext}"
    assert main(["anonymize", str(clip), "-o", str(out), "--method", "pixelate", "--quiet"]) == 0
    assert len(list(read_frames(out))) == N_FRAMES
    assert abs(probe(out).fps - FPS) < 0.01
