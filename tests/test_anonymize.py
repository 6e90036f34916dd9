"""Anonymize and compose stages."""
import numpy as np
import pytest

import faceanon
from faceanon.anonymize import region_mask
from faceanon.compose import feathered_alpha
from faceanon.pipeline import Pipeline, PipelineConfig
from faceanon.types import Face

BASELINES = ["blur", "pixelate", "mask", "noise", "edge", "superpixel"]


@pytest.fixture(scope="module")
def lfw_faces(lfw_face):
    return faceanon.detect(lfw_face)


@pytest.mark.parametrize("method", BASELINES)
def test_method_changes_the_face_and_nothing_far_away(method, lfw_face, lfw_faces):
    out = faceanon.anonymize(lfw_face, method=method, faces=lfw_faces)
    assert out.shape == lfw_face.shape and out.dtype == np.uint8
    f = lfw_faces[0]
    x1, y1, x2, y2 = f.box.astype(int)
    inner = (slice(y1 + 10, y2 - 10), slice(x1 + 10, x2 - 10))
    changed = np.abs(out[inner].astype(int) - lfw_face[inner].astype(int)).mean()
    assert changed > 8, f"{method} barely changed the face ({changed:.1f})"
    # The corners of the image are far outside the region and its feather.
    for corner in [(slice(0, 10), slice(0, 10)), (slice(-10, None), slice(-10, None))]:
        assert np.array_equal(out[corner], lfw_face[corner])


def test_mask_hides_the_face_from_the_detector(lfw_face, lfw_faces):
    out = faceanon.anonymize(lfw_face, method="mask", faces=lfw_faces)
    f = lfw_faces[0]
    cx, cy = f.center.astype(int)
    assert (out[cy - 10 : cy + 10, cx - 10 : cx + 10] == 0).all()
    assert faceanon.detect(out) == []


def test_pixelate_blocks_are_flat(lfw_face, lfw_faces):
    out = faceanon.anonymize(lfw_face, method="pixelate", block=8, faces=lfw_faces, region="box", mask_scale=1.0)
    x1, y1 = lfw_faces[0].box.astype(int)[:2]
    # a block fully inside the face: anchored at the face's top-left corner
    block = out[y1 + 16 : y1 + 24, x1 + 16 : x1 + 24]
    assert (block == block[0, 0]).all()


@pytest.mark.parametrize("k", [3, 5, 15, 31])
def test_the_separable_blur_is_opencvs_gaussian(k):
    """gaussian_blur's two float passes give cv2.GaussianBlur's result (same kernel and sigma,
    replicated border) to rounding, on colour and grey crops."""
    import cv2

    from faceanon.anonymize.classical import gaussian_blur, separable_gaussian

    rng = np.random.default_rng(k)
    for shape in [(37, 53, 3), (64, 48)]:
        crop = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (3, 3), 0)  # image-like
        exact = cv2.GaussianBlur(crop, (k, k), 0, borderType=cv2.BORDER_REPLICATE).astype(int)
        assert np.abs(gaussian_blur(crop, k).astype(int) - exact).max() <= 2
        sigma = k / 4
        exact = cv2.GaussianBlur(crop, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE).astype(int)
        assert np.abs(separable_gaussian(crop, sigma).astype(int) - exact).max() <= 2


def test_blur_strength_follows_k(lfw_face, lfw_faces):
    def sharpness(img):
        f = lfw_faces[0].box.astype(int)
        g = img[f[1] : f[3], f[0] : f[2], 0].astype(float)
        return np.abs(np.diff(g, axis=1)).mean()

    weak = faceanon.anonymize(lfw_face, method="blur", k=5, faces=lfw_faces)
    strong = faceanon.anonymize(lfw_face, method="blur", k=41, faces=lfw_faces)
    assert sharpness(strong) < sharpness(weak) < sharpness(lfw_face)


def test_noise_is_reproducible_per_seed(lfw_face, lfw_faces):
    a = faceanon.anonymize(lfw_face, method="noise", seed=1, faces=lfw_faces)
    b = faceanon.anonymize(lfw_face, method="noise", seed=1, faces=lfw_faces)
    c = faceanon.anonymize(lfw_face, method="noise", seed=2, faces=lfw_faces)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_input_array_is_not_modified(lfw_face):
    before = lfw_face.copy()
    faceanon.anonymize(lfw_face, method="mask")
    assert np.array_equal(before, lfw_face)


def test_region_shapes(lfw_face):
    pipe = Pipeline(PipelineConfig(method="mask", region="hull"))
    faces = pipe.detect(lfw_face)
    assert faces[0].landmarks68 is not None  # the hull asks for 68 landmarks
    size = lfw_face.shape[:2]
    box = region_mask(faces[0], size, "box", 1.0).sum()
    ellipse = region_mask(faces[0], size, "ellipse", 1.0).sum()
    hull = region_mask(faces[0], size, "hull", 1.0).sum()
    assert ellipse == pytest.approx(box * np.pi / 4, rel=0.05)
    assert 0.4 * box < hull < 1.3 * box
    assert region_mask(faces[0], size, "ellipse", 1.5).sum() == pytest.approx(ellipse * 2.25, rel=0.05)
    out, _ = pipe.anonymize(lfw_face, faces)
    nose = faces[0].landmarks68[30].astype(int)
    assert (out[nose[1], nose[0]] == 0).all()


def test_feather_keeps_the_region_fully_replaced():
    mask = np.zeros((60, 60), np.float32)
    mask[20:40, 20:40] = 1
    alpha = feathered_alpha(mask, 6)
    assert (alpha[mask == 1] == 1).all()
    assert 0 < alpha[30, 44] < 1 and alpha[30, 59] < 0.05
    assert np.all(np.diff(alpha[30, 40:]) <= 1e-6)  # fades monotonically outward


def test_faces_at_the_border_and_tiny_faces_do_not_crash():
    img = np.full((50, 80, 3), 128, np.uint8)
    faces = [Face([-20, -10, 15, 30], 0.9), Face([70, 40, 95, 70], 0.9), Face([40, 20, 41, 21], 0.9)]
    for method in BASELINES:
        out = faceanon.anonymize(img, method=method, faces=faces)
        assert out.shape == img.shape
