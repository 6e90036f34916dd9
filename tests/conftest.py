import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

# The same examples on every machine and run (no example database): a property test that passes
# here passes anywhere; `HYPOTHESIS_PROFILE=explore` searches afresh.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEANON_SHARED", REPO.parent / "shared")) / "data"


def need(path: Path) -> Path:
    if not path.exists():
        # CI sets FACEANON_REQUIRE_DATA: there a missing ../shared must fail the run, not
        # quietly skip two thirds of the suite.
        if os.environ.get("FACEANON_REQUIRE_DATA"):
            pytest.fail(f"{path} not available (../shared is absent)")
        pytest.skip(f"{path} not available (../shared is absent)")
    return path


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return need(SHARED / "lfw" / "images")


@pytest.fixture(scope="session")
def lfw_face(lfw_dir) -> np.ndarray:
    """A greyscale LFW image as RGB (one frontal face in the middle)."""
    path = lfw_dir / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    return np.asarray(Image.open(need(path)).convert("RGB"))


@pytest.fixture(scope="session")
def celeba_face() -> np.ndarray:
    root = need(SHARED / "celeba_faces" / "images")
    first = sorted(p for p in root.rglob("*.jpg"))[0]
    return np.asarray(Image.open(first).convert("RGB"))


@pytest.fixture(scope="session")
def city() -> np.ndarray:
    return np.asarray(Image.open(REPO / "samples" / "city.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def wider_dir() -> Path:
    return need(SHARED / "wider_face_val_subset")
