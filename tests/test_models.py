"""Model ports."""
import numpy as np
import pytest

import faceanon
from faceanon.align import align_face
from faceanon.models.recognizers import recognizer

torch = pytest.importorskip("torch")


def test_sface_torch_port_matches_the_onnx_model(lfw_dir):
    from PIL import Image

    from faceanon.models.sface_torch import build_sface

    net = build_sface()
    paths = sorted(lfw_dir.glob("*/*_0001.jpg"))[::400][:8]
    cosines = []
    for p in paths:
        img = np.asarray(Image.open(p).convert("RGB"))
        faces = faceanon.detect(img)
        if not faces:
            continue
        crop, _ = align_face(img, faces[0], 112)
        with torch.no_grad():
            e = net(torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None])[0].numpy()
        cosines.append(float(e / np.linalg.norm(e) @ recognizer("sface").embed(img, faces[0])))
    assert len(cosines) >= 6 and min(cosines) >= 0.99


def test_the_gates_batched_sface_matches_the_onnx_model_and_its_attacks_differ(lfw_dir):
    """SFace.embed_many (the recognizer gate's batched float run, BatchNorms folded) gives
    OpenCV's embeddings; the forehead attacker's alignment is another crop, not the same one."""
    from PIL import Image

    from faceanon.models.recognizers import FOREHEAD_SHIFT, shifted_up

    sface, pairs = recognizer("sface"), []
    for p in sorted(lfw_dir.glob("*/*_0001.jpg"))[::400][:6]:
        img = np.asarray(Image.open(p).convert("RGB"))
        pairs += [(img, f) for f in faceanon.detect(img)[:1]]
    batched = sface.embed_many(pairs)
    one_by_one = np.stack([sface.embed(img, f) for img, f in pairs])
    assert len(pairs) >= 5 and (batched * one_by_one).sum(axis=1).min() >= 0.999
    img, face = pairs[0]
    up = shifted_up(face, FOREHEAD_SHIFT)
    eyes = face.landmarks5[:2].mean(axis=0) - up.landmarks5[:2].mean(axis=0)
    iod = np.linalg.norm(face.landmarks5[1] - face.landmarks5[0])
    assert abs(np.linalg.norm(eyes) - FOREHEAD_SHIFT * iod) < 0.5 and eyes[1] > 0  # moved up (y down)
    assert float(sface.embed(img, face) @ sface.embed(img, up)) < 0.99


def test_sface_torch_port_is_differentiable():
    from faceanon.models.sface_torch import build_sface

    x = (torch.rand(1, 3, 112, 112) * 255).requires_grad_(True)
    build_sface()(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_pgd_fools_sface_inside_the_face_only(lfw_face):
    from faceanon.evaluate import metrics

    face = faceanon.detect(lfw_face)[0]
    out = faceanon.anonymize(lfw_face, method="pgd", epsilon=0.03, steps=5, faces=[face])
    sface = recognizer("sface")
    assert float(sface.embed(lfw_face, face) @ sface.embed(out, face)) < 0.3
    assert metrics.ssim(lfw_face, out) > 0.95
    assert np.abs(out.astype(int) - lfw_face).max() <= round(0.03 * 255) + 1  # the L-inf bound holds
    assert np.array_equal(out[:15, :15], lfw_face[:15, :15])  # outside the face: untouched


def test_fgsm_is_one_bounded_step(lfw_face):
    face = faceanon.detect(lfw_face)[0]
    out = faceanon.anonymize(lfw_face, method="fgsm", epsilon=0.02, faces=[face])
    diff = np.abs(out.astype(int) - lfw_face)
    assert 0 < diff.max() <= round(0.02 * 255) + 1


def test_structured_adversarial_fools_sface_keeps_geometry(lfw_face):
    """The texture-code attack: SFace is pushed away, the picture and its landmarks stay."""
    from faceanon.align import Landmarker
    from faceanon.evaluate import metrics

    face = faceanon.detect(lfw_face)[0]
    out = faceanon.anonymize(lfw_face, method="adversarial", faces=[face])
    sface = recognizer("sface")
    assert float(sface.embed(lfw_face, face) @ sface.embed(out, face)) < 0.5
    assert metrics.ssim(lfw_face, out) > 0.93
    a, b = faceanon.Face(face.box, face.score, face.landmarks5), faceanon.Face(face.box, face.score, face.landmarks5)
    Landmarker(68)(lfw_face, [a])
    Landmarker(68)(out, [b])
    iod = np.linalg.norm(a.landmarks68[36:42].mean(0) - a.landmarks68[42:48].mean(0))
    assert np.linalg.norm(a.landmarks68 - b.landmarks68, axis=1).mean() / iod < 0.05
    weaker = faceanon.anonymize(lfw_face, method="adversarial", delta=0.25, faces=[face])
    assert metrics.ssim(lfw_face, weaker) > metrics.ssim(lfw_face, out)
