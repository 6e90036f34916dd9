"""The realism judge (classifier two-sample test) must be honest: two sets of real faces cannot be
told apart, blurred faces always can."""
import cv2
import numpy as np
import pytest

from faceanon.evaluate.realism import CROP, CropSet, judge_crop, judge_half, people_bootstrap, two_sample_test

from conftest import SHARED, need


def test_interval_resamples_people_not_crops():
    # 40 people a side, 10 crops each; the judge is right on every crop of half the people
    people = [f"p{i}" for i in range(80) for _ in range(10)]
    sides = np.repeat(np.r_[np.zeros(40), np.ones(40)].astype(int), 10)
    correct = np.repeat(np.arange(80) % 2 == 0, 10)
    lo, hi = people_bootstrap(correct, people, sides)
    assert lo < 0.5 < hi
    # 40 independent people a side carry the uncertainty of 80 trials, not of 800 crops
    assert hi - lo > 0.15
    one_each = people_bootstrap(np.arange(800) % 2 == 0, [f"q{i}" for i in range(800)], np.repeat([0, 1], 400))
    assert one_each[1] - one_each[0] < 0.1
    assert all(np.isnan(people_bootstrap(correct[:10], people[:10], sides[:10])))


def test_judge_crop_is_the_same_view_wherever_the_face_is():
    rng = np.random.default_rng(0)
    face = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    small, big = np.zeros((200, 300, 3), np.uint8), np.zeros((900, 700, 3), np.uint8)
    small[10:50, 30:70] = face
    big[500:540, 600:640] = face
    a, b = judge_crop(small, [30, 10, 70, 50]), judge_crop(big, [600, 500, 640, 540])
    assert a.shape == (CROP, CROP, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # a face at the border: the outside is black, not an error
    edge = judge_crop(small, [-20, -20, 20, 20])
    assert edge.shape == (CROP, CROP, 3) and edge[:10, :10].max() < 30


def test_people_split_is_fixed_and_two_sided():
    people = [f"person_{i}" for i in range(200)]
    halves = [judge_half(p) for p in people]
    assert halves == [judge_half(p) for p in people]
    assert 60 < halves.count("fake") < 140


def test_too_few_crops_give_no_figure():
    few = CropSet([np.zeros((CROP, CROP, 3), np.uint8)] * 5, [str(i) for i in range(5)])
    r = two_sample_test(few, few)
    assert np.isnan(r["c2st"]) and r["c2st_test"] == 0


@pytest.fixture(scope="module")
def celeba_crops():
    root = need(SHARED / "celeba_faces" / "images")
    real, other, blurred = CropSet.empty(), CropSet.empty(), CropSet.empty()
    for person in sorted(p.name for p in root.iterdir())[:100]:
        for path in sorted((root / person).glob("*.jpg"))[:4]:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            # CelebA crops are centred on the face: a fixed box stands in for the detector's
            box = [64, 64, 192, 192]
            if judge_half(person) == "real":
                real.add(judge_crop(rgb, box), person)
            else:
                other.add(judge_crop(rgb, box), person)
                blurred.add(judge_crop(cv2.GaussianBlur(rgb, (0, 0), 6), box), person)
    return real, other, blurred


@pytest.mark.slow
def test_real_against_real_is_near_chance(celeba_crops):
    real, other, _ = celeba_crops
    r = two_sample_test(real, other)
    assert r["c2st_test"] >= 60
    assert r["c2st_low"] < 0.5 + 0.02 and r["c2st"] < 0.68


@pytest.mark.slow
def test_blurred_faces_are_always_told(celeba_crops):
    real, _, blurred = celeba_crops
    r = two_sample_test(real, blurred)
    assert r["c2st"] > 0.9


def test_evaluate_wider_with_a_method(tmp_path, capsys):
    """`evaluate wider --method` sorts every detected face by what it got and where it is."""
    import json
    import shutil
    from pathlib import Path

    from faceanon.cli import main
    from faceanon.detect import create_detector
    from faceanon.io import read_image

    root = tmp_path / "wider"
    (root / "images" / "street").mkdir(parents=True)
    city = Path(__file__).resolve().parents[1] / "samples" / "city.jpg"
    shutil.copy(city, root / "images" / "street" / "city.jpg")
    faces = create_detector("yunet")(read_image(city).rgb)
    boxes = [[float(f.box[0]), float(f.box[1]), float(f.box[2] - f.box[0]), float(f.box[3] - f.box[1])] for f in faces]
    # one real face left out of the annotations: whatever lands on it counts as a non-face
    (root / "annotations.json").write_text(json.dumps({"street/city.jpg": {"boxes_xywh": boxes[1:]}}))
    assert main(["evaluate", "wider", "--method", "blur", "--images", str(root), "--detector", "yunet", "--report", str(tmp_path / "r"), "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["faces"] == len(faces)
    assert out["got"].get("blur on a non-face", 0) >= 1 and out["got"].get("blur on a face", 0) == len(faces) - out["got"]["blur on a non-face"]
    assert out["synthesized_on_non_faces"] == 0  # blur paints no face
    assert out["c2st"] is None and out["c2st_test"] == 0  # far too few faces for a judge
    assert (tmp_path / "r" / "wider" / "blur.json").exists()


def test_evaluate_wider_without_annotations_is_one_line(tmp_path, capsys):
    from faceanon.cli import main

    assert main(["evaluate", "wider", "--method", "blur", "--images", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "annotations.json" in err and str(tmp_path) in err
