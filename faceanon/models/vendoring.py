"""How the modified vendored files were made (models/vendor/NOTICE.md says which).

    python -m faceanon.models.vendoring ORIGINAL_centerface.onnx faceanon/models/vendor/centerface.onnx
"""
from __future__ import annotations

import sys


def make_dynamic(src: str) -> bytes:
    """The CenterFace graph of ``src`` with symbolic batch/height/width on its image input and
    outputs; weights unchanged."""
    import onnx

    model = onnx.load(src)
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name in ("input.1", "537", "538", "539", "540"):
            dims = value.type.tensor_type.shape.dim
            for d, sym in zip(dims, ("B", None, "H", "W")):
                if sym:
                    d.dim_param = sym
    # Initializers listed as graph inputs block constant folding; they are weights, not inputs.
    weights = {init.name for init in model.graph.initializer}
    keep = [v for v in model.graph.input if v.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model.SerializeToString()


if __name__ == "__main__":
    with open(sys.argv[2], "wb") as out:
        out.write(make_dynamic(sys.argv[1]))
