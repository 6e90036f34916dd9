"""The face-space identity engine (work in progress on issue 4): basic guarantees."""
import numpy as np
import pytest

import faceanon
from faceanon.evaluate import metrics
from faceanon.models.facespace.model import face_space
from faceanon.models.recognizers import recognizer


@pytest.fixture(scope="module")
def lfw_detected(lfw_face):
    return faceanon.detect(lfw_face)[0]


def _cfa(img, face, **params):
    return faceanon.anonymize(img, method="cfa", faces=[faceanon.Face(face.box, face.score, face.landmarks5)], **params)


def test_encode_round_trip_is_identity(lfw_face, lfw_detected):
    out = _cfa(lfw_face, lfw_detected, angle=0)
    assert metrics.ssim(lfw_face, out) > 0.97


def test_similarity_falls_as_the_angle_grows(lfw_face, lfw_detected):
    rec = recognizer("sface")
    ref = rec.embed(lfw_face, lfw_detected)
    sims = [float(ref @ rec.embed(_cfa(lfw_face, lfw_detected, angle=a), lfw_detected)) for a in (0, 45, 90, 180)]
    assert metrics.is_monotone_decreasing(sims, tolerance=0.02), sims
    assert sims[-1] < sims[0] - 0.2


def test_seed_picks_the_direction(lfw_face, lfw_detected):
    a = faceanon.anonymize(lfw_face, method="cfa", seed=1, faces=[lfw_detected])
    b = faceanon.anonymize(lfw_face, method="cfa", seed=1, faces=[lfw_detected])
    c = faceanon.anonymize(lfw_face, method="cfa", seed=2, faces=[lfw_detected])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_background_is_untouched(lfw_face, lfw_detected):
    out = _cfa(lfw_face, lfw_detected, angle=90)
    assert np.array_equal(out[:20, :20], lfw_face[:20, :20])
    assert face_space().id_dims >= 16
