"""Face, registries and parameters."""
import numpy as np
import pytest

import faceanon
from faceanon.anonymize import ANONYMIZERS, create_anonymizer
from faceanon.detect import DETECTORS
from faceanon.errors import UsageError
from faceanon.types import Face


def test_face_geometry():
    f = Face(box=[10, 20, 30, 60], score=0.9, landmarks5=np.ones((5, 2)))
    assert f.width == 20 and f.height == 40
    np.testing.assert_allclose(f.scaled_box(2.0), [0, 0, 40, 80])
    g = f.shifted(10, 20)
    np.testing.assert_allclose(g.box, [0, 0, 20, 40])
    np.testing.assert_allclose(g.landmarks5, np.tile([-9, -19], (5, 1)))
    np.testing.assert_allclose(f.box, [10, 20, 30, 60])  # the original is untouched
    assert f.transformed(0.5).box.tolist() == [5, 10, 15, 30]
    assert f.to_list() == [10, 20, 30, 60, 0.9]


def test_every_baseline_is_registered_with_its_parameters():
    names = set(ANONYMIZERS.names())
    assert {"blur", "pixelate", "mask", "noise", "edge", "superpixel"} <= names
    listing = faceanon.methods()
    assert "k" in listing["blur"]["params"] and "block" in listing["pixelate"]["params"]
    assert "sigma" in listing["noise"]["params"] and "segments" in listing["superpixel"]["params"]
    assert {"yunet", "mtcnn", "centerface", "dlib-hog", "dlib-mmod", "ensemble"} <= set(DETECTORS.names())


def test_parameters_are_parsed_and_checked():
    assert create_anonymizer("blur", k="31").k == 31
    assert create_anonymizer("mask", color="255,0,10").color == (255, 0, 10)
    with pytest.raises(UsageError, match="no parameter"):
        create_anonymizer("blur", kernel="3")
    with pytest.raises(UsageError, match="expected int"):
        create_anonymizer("blur", k="big")
    with pytest.raises(UsageError, match="unknown method"):
        create_anonymizer("nope")
    with pytest.raises(UsageError, match=r"mask parameter color: must be 0\.\.255 \(got 300\)"):
        create_anonymizer("mask", color="300,0,0")
