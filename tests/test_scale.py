"""`--engine ray`: the same outputs as a local run, a manifest listing every file, a run that
resumes after an interruption, and a bad file that costs one line, not the job."""
import json
import shutil

import pytest

pytest.importorskip("ray")

from faceanon.cli import main  # noqa: E402


@pytest.fixture(autouse=True)
def _ray_stopped_after():
    yield
    import ray

    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_matches_the_local_run_and_resumes(tmp_path, wider_dir, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for path in sorted((wider_dir / "images").rglob("*.jpg"))[:6]:
        shutil.copy(path, src / path.name)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert main(["anonymize", str(src), "-o", str(local), "-q"]) == 1  # the broken file
    assert main(["anonymize", str(src), "-o", str(ray_out), "--engine", "ray", "--workers", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    images = sorted(p.name for p in src.glob("*.jpg") if p.name != "broken.jpg")
    assert sorted(p.name for p in ray_out.glob("*.jpg")) == images
    for name in images:
        assert (ray_out / name).read_bytes() == (local / name).read_bytes(), name

    manifest = ray_out / ".faceanon-manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    files = {e["input"]: e for e in entries if "input" in e}
    assert sorted(files) == sorted(images + ["broken.jpg"])
    assert files["broken.jpg"]["status"] == "error" and all(files[n]["status"] == "done" for n in images)

    # An interruption: the last two files never made it into the manifest and one output is gone.
    kept = [line for line in manifest.read_text().splitlines() if json.loads(line).get("input") not in images[-2:]]
    manifest.write_text("\n".join(kept) + "\n")
    (ray_out / images[-1]).unlink()
    assert main(["anonymize", str(src), "-o", str(ray_out), "--engine", "ray", "--workers", "2"]) == 1
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{len(images) - 2} done by an earlier run, skipped" in summary
    for name in images:
        assert (ray_out / name).read_bytes() == (local / name).read_bytes(), name
