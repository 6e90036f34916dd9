"""Pair lists and galleries of the evaluation protocols."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

DEFAULT_DATA = Path(os.environ.get("FACEANON_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))


@dataclass
class PairSet:
    name: str
    images: Path  # root of <identity>/<file>.jpg
    pairs: list[tuple[str, str, bool]]  # (relative path a, relative path b, same identity)

    @property
    def same(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b, s in self.pairs if s]

    def gallery(self) -> list[str]:
        """Every image of the dataset folder (relative paths), sorted."""
        return sorted(p.relative_to(self.images).as_posix() for p in self.images.rglob("*.jpg"))


def identity(rel: str) -> str:
    return rel.split("/")[0]


def read_pairs(path: Path) -> list[tuple[str, str, bool]]:
    """LFW ``pairs.txt`` (header ``folds n``; ``name i j`` same, ``n1 i n2 j`` different) or the
    ``a<TAB>b<TAB>1|0`` format, told apart by the first line."""
    try:
        lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    except OSError as e:
        raise UsageError(f"{path}: cannot read pairs ({e.strerror or e})") from None
    if not lines:
        raise UsageError(f"{path}: no pairs")
    pairs = []
    if len(lines[0]) == 2 and all(t.isdigit() for t in lines[0]):  # LFW header
        for parts in lines[1:]:
            if len(parts) == 3:
                n, i, j = parts
                pairs.append((f"{n}/{n}_{int(i):04d}.jpg", f"{n}/{n}_{int(j):04d}.jpg", True))
            elif len(parts) == 4:
                n1, i, n2, j = parts
                pairs.append((f"{n1}/{n1}_{int(i):04d}.jpg", f"{n2}/{n2}_{int(j):04d}.jpg", False))
            else:
                raise UsageError(f"{path}: unexpected line {' '.join(parts)!r}")
    else:
        for parts in lines:
            if len(parts) != 3 or parts[2] not in ("0", "1"):
                raise UsageError(f"{path}: expected 'a b 1|0', got {' '.join(parts)!r}")
            pairs.append((parts[0], parts[1], parts[2] == "1"))
    return pairs


def load_dataset(name: str, images: str | None = None, pairs: str | None = None) -> PairSet:
    defaults = {"lfw": DEFAULT_DATA / "lfw", "celeba": DEFAULT_DATA / "celeba_faces"}
    if name not in defaults and (images is None or pairs is None):
        raise UsageError(f"dataset {name!r} needs --images and --pairs")
    base = defaults.get(name)
    img_root = Path(images) if images else base / "images"
    pair_file = Path(pairs) if pairs else base / "pairs_dev.txt"
    if not img_root.is_dir():
        raise UsageError(f"{img_root}: image folder not found (set --images or FACEANON_DATA)")
    return PairSet(name=name, images=img_root, pairs=read_pairs(pair_file))
