"""Refresh generated tables in the README between marker comments, so every figure there is
the output of a command in the repo."""
from __future__ import annotations

from pathlib import Path

from ..io.atomic import atomic_path


def replace_section(readme: Path, name: str, body: str) -> bool:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->``. Returns
    False (and changes nothing) when the markers are missing."""
    readme = Path(readme)
    text = readme.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        return False
    new = text[: i + len(start)] + "\n" + body.strip("\n") + "\n" + text[j:]
    with atomic_path(readme) as tmp:
        Path(tmp).write_text(new)
    return True
