"""Evaluation metrics on tiny known cases, and the protocol end to end on a mini dataset."""
import json
import shutil

import numpy as np
import pytest

import faceanon
from faceanon.cli import main
from faceanon.evaluate import metrics
from faceanon.evaluate.datasets import read_pairs
from faceanon.models.recognizers import recognizer


def test_far_threshold_is_what_it_claims():
    rng = np.random.default_rng(0)
    impostors = rng.normal(0, 1, 1_000_000)
    t = metrics.far_threshold(impostors, 1e-3)
    far = metrics.accept_rate(impostors, t)
    assert 0.0009 <= far <= 0.001
    assert t == pytest.approx(3.09, abs=0.03)  # the normal quantile at 1 - 1e-3
    # genuine scores well above it are all accepted, ones below are not
    assert metrics.accept_rate(np.full(10, t + 0.01), t) == 1.0
    assert metrics.accept_rate(np.full(10, t), t) == 0.0
    # small sets: never more than floor(n * far) impostors above the threshold
    small = rng.normal(0, 1, 2500)
    assert (small > metrics.far_threshold(small, 1e-3)).sum() <= 2


def test_identical_images_give_ssim_one_and_full_tpr(lfw_face):
    assert metrics.ssim(lfw_face, lfw_face) == pytest.approx(1.0)
    assert metrics.psnr(lfw_face, lfw_face) == float("inf")
    face = faceanon.detect(lfw_face)[0]
    for name in ("sface", "dlib"):
        e = recognizer(name).embed(lfw_face, face)
        sims = np.array([e @ recognizer(name).embed(lfw_face.copy(), face) for _ in range(3)])
        assert metrics.accept_rate(sims, 0.9) == 1.0


def test_recognizers_tell_people_apart(lfw_dir):
    from PIL import Image

    def load(rel):
        return np.asarray(Image.open(lfw_dir / rel).convert("RGB"))

    a, b = load("Abel_Pacheco/Abel_Pacheco_0001.jpg"), load("Abel_Pacheco/Abel_Pacheco_0002.jpg")
    c = load("Aaron_Sorkin/Aaron_Sorkin_0001.jpg")
    fa, fb, fc = (faceanon.detect(x)[0] for x in (a, b, c))
    for name in ("sface", "dlib"):
        rec = recognizer(name)
        same = rec.embed(a, fa) @ rec.embed(b, fb)
        diff = rec.embed(a, fa) @ rec.embed(c, fc)
        assert same > diff + 0.05, name  # dlib's cosines are compressed near 1


def test_masked_face_is_not_detected(lfw_face):
    face = faceanon.detect(lfw_face)[0]
    masked = faceanon.anonymize(lfw_face, method="mask", faces=[face])
    from faceanon.detect import create_detector

    for name in ("yunet", "mtcnn", "dlib-hog"):
        det = create_detector(name)
        assert metrics.detected_at(det(lfw_face), face.box), name
        assert not metrics.detected_at(det(masked), face.box), name


def test_identity_ranks():
    gallery = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], np.float32)
    ids = np.array(["ann", "bob", "cat", "cat"])
    probe = np.array([0.6, 0.8], np.float32)  # equal to one of cat's images
    assert metrics.identity_ranks(probe, gallery, ids, "cat") == (1, pytest.approx(0.96))
    assert metrics.identity_ranks(probe, gallery, ids, "ann")[0] == 3


def test_best_other_scores_skip_the_same_person():
    e = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], np.float32)
    ids = np.array(["ann", "bob", "cat", "cat"])
    best = metrics.best_other_scores(e, ids, chunk=3)  # chunked like a large gallery
    # cat's second image equals bob's best match; cat's images never count against each other
    np.testing.assert_allclose(best, [0.8, 0.96, 0.6, 0.96], atol=1e-6)


def test_frechet_distance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 4))
    y = rng.normal(size=(4000, 4))
    assert metrics.frechet_distance(x, y) < 0.02
    assert metrics.frechet_distance(x, y + [2, 0, 0, 0]) == pytest.approx(4.0, abs=0.1)
    assert metrics.frechet_distance(x, 3 * y) == pytest.approx(4 * 4.0, rel=0.05)  # Tr(1 + 9 - 2*3) per dim


def test_monotonicity():
    assert metrics.is_monotone_decreasing([0.9, 0.7, 0.7, 0.2])
    assert not metrics.is_monotone_decreasing([0.9, 0.5, 0.7])
    assert metrics.spearman([1, 2, 3, 4], [0.9, 0.7, 0.5, 0.1]) == pytest.approx(-1.0)


def test_read_pairs_formats(tmp_path):
    lfw = tmp_path / "pairs.txt"
    lfw.write_text("1\t2\nAnn\t1\t2\nAnn\t1\tBob\t3\n")
    assert read_pairs(lfw) == [("Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True), ("Ann/Ann_0001.jpg", "Bob/Bob_0003.jpg", False)]
    tab = tmp_path / "p2.txt"
    tab.write_text("x/1.jpg\tx/2.jpg\t1\nx/1.jpg\ty/1.jpg\t0\n")
    assert read_pairs(tab) == [("x/1.jpg", "x/2.jpg", True), ("x/1.jpg", "y/1.jpg", False)]


@pytest.fixture(scope="module")
def mini(tmp_path_factory, lfw_dir):
    """8 LFW people x 3 images, 16 same-identity pairs."""
    root = tmp_path_factory.mktemp("mini")
    people = [p for p in sorted(lfw_dir.iterdir()) if len(list(p.iterdir())) >= 3][:8]
    lines = []
    for p in people:
        files = sorted(p.iterdir())[:3]
        (root / "images" / p.name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / "images" / p.name / f.name)
        lines += [f"{p.name}/{files[0].name}\t{p.name}/{files[1].name}\t1", f"{p.name}/{files[1].name}\t{p.name}/{files[2].name}\t1"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_evaluate_end_to_end(mini, capsys):
    report = mini / "report"
    code = main(["evaluate", "lfw", "--images", str(mini / "images"), "--pairs", str(mini / "pairs.txt"),
                 "--report", str(report), "--method", "mask", "--curve-pairs", "0", "-q"])
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["pairs"] == 16 and line["tpr_sface_original"] == 1.0
    # Masked faces are not found; a black oval can still draw a weak hit from YuNet at its
    # recall-first 0.3 threshold, which depends on the last pixel of the feathered edge.
    assert line["detection_yunet"] <= 2 / 16
    assert line["tpr_sface"] < 0.2 and line["ssim"] < 0.95
    saved = json.loads((report / "lfw" / "mask.json").read_text())
    assert saved["summary"]["tpr_dlib"] == line["tpr_dlib"]
    assert (report / "lfw" / "mask_samples.png").stat().st_size > 1000
    assert (report / "lfw_privacy_utility.png").exists()


@pytest.mark.slow
def test_controllability_curve_of_blur(mini, capsys):
    report = mini / "report"
    code = main(["evaluate", "lfw", "--images", str(mini / "images"), "--pairs", str(mini / "pairs.txt"),
                 "--report", str(report), "--method", "blur", "--limit", "6", "--curve-pairs", "6", "-q"])
    assert code == 0
    curve = json.loads((report / "lfw" / "blur.json").read_text())["controllability"]
    sims = [p["sface_self_similarity"] for p in curve["curve"]]
    assert curve["param"] == "k" and sims[0] > 0.9 and sims[-1] < 0.5
    assert curve["monotone_sface"] and curve["spearman_sface"] < -0.9


def test_degradations_keep_the_frame_and_lose_detail(lfw_face):
    from faceanon.evaluate.protocol import degrade

    for how in ("jpeg75", "downscale0.5"):
        out = degrade(lfw_face, how)
        assert out.shape == lfw_face.shape and out.dtype == np.uint8
        assert not np.array_equal(out, lfw_face) and metrics.ssim(lfw_face, out) > 0.6
    # LFW files are JPEGs already, so recompression changes little; halving the size loses detail
    assert metrics.ssim(lfw_face, degrade(lfw_face, "downscale0.5")) < 0.99
    assert degrade(lfw_face, None) is lfw_face
    with pytest.raises(ValueError):
        degrade(lfw_face, "sepia")


@pytest.mark.slow
def test_robustness_run_is_named_apart_and_password_never_stored(mini, capsys):
    report = mini / "report_fit"
    code = main(["evaluate", "lfw", "--images", str(mini / "images"), "--pairs", str(mini / "pairs.txt"),
                 "--report", str(report), "--method", "fit", "--param", "password=hunter2", "--limit", "4",
                 "--curve-pairs", "0", "--after", "jpeg75", "-q"])
    assert code == 0
    files = sorted(p.name for p in (report / "lfw").iterdir())
    assert "fit@jpeg75.json" in files
    assert not any("hunter2" in p.read_text(errors="ignore") for p in (report / "lfw").glob("*.json"))


def test_password_methods_are_evaluated_under_a_fixed_password():
    """`evaluate all` builds every method without parameters; fit would refuse to start."""
    from faceanon.evaluate.run import EVALUATION_PASSWORD, ORIGINAL, evaluation_params
    from faceanon.pipeline import Pipeline, PipelineConfig

    assert evaluation_params("fit") == {"password": EVALUATION_PASSWORD}
    assert evaluation_params("fit", {"password": "mine"}) == {"password": "mine"}
    assert evaluation_params("blur") == {} and evaluation_params(ORIGINAL) == {}
    Pipeline(PipelineConfig(method="fit", params=evaluation_params("fit")))  # builds


def test_evaluate_table_refreshes_the_readme_and_docs_from_the_report(tmp_path, capsys):
    """The README's short table and docs/evaluation.md's full one come from report/ (no figure
    typed by hand); a page without its markers is a one-line error, not a silent no-op."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "docs").mkdir()
    shutil.copy(repo / "README.md", tmp_path / "README.md")
    shutil.copy(repo / "docs" / "evaluation.md", tmp_path / "docs" / "evaluation.md")
    shutil.copytree(repo / "report", tmp_path / "report", ignore=shutil.ignore_patterns("*.png", "cache"))
    cfa = json.loads((tmp_path / "report" / "lfw" / "cfa.json").read_text())["summary"]
    cfa["tpr_sface"] = 0.4321  # a figure no page holds yet
    saved = json.loads((tmp_path / "report" / "lfw" / "cfa.json").read_text())
    saved["summary"] = cfa
    (tmp_path / "report" / "lfw" / "cfa.json").write_text(json.dumps(saved))
    assert main(["evaluate", "table", "--readme", str(tmp_path / "README.md"), "--report", str(tmp_path / "report")]) == 0
    readme = (tmp_path / "README.md").read_text()
    summary = readme[readme.index("results-summary:start"):readme.index("results-summary:end")]
    row = next(line for line in summary.splitlines() if line.startswith("| `cfa` |"))
    assert row.startswith("| `cfa` | 0.432 /") and "| `original` |" in summary
    pairs = [json.loads((tmp_path / "report" / d / "cfa.json").read_text())["summary"]["pairs"] for d in ("lfw", "celeba")]
    assert f"| `cfa` | {pairs[0]} / {pairs[1]} | 0.432 /" in (tmp_path / "docs" / "evaluation.md").read_text()
    (tmp_path / "README.md").write_text("# no markers\n")
    capsys.readouterr()
    assert main(["evaluate", "table", "--readme", str(tmp_path / "README.md"), "--report", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "README.md: no results-summary markers" in err[0]
