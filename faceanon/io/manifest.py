"""The run manifest of a folder run: one JSON line per finished file, so an interrupted run
resumes where it stopped and every run can be audited.

``OUT/.faceanon-manifest.jsonl`` holds, per file: input and output (relative), the input's
size, modification time and SHA-256, the number of faces, what they got, status
(``done``/``error``), the error, and the fingerprint of the settings. A rerun of the same
command skips files whose line says ``done`` under the same settings, whose input has not
changed since (size and modification time), and whose output still exists. Each line is
flushed and fsynced when its file is finished; a line cut short by a kill is ignored.

The password of a reversible method never enters the fingerprint (a hash of it would let
anyone who reads the manifest test guesses offline): after changing only the password, rerun
with ``--redo``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

MANIFEST_NAME = ".faceanon-manifest.jsonl"
# atomic_path's temporaries: ".<stem>.<8 random characters>.part<suffix>"
_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[A-Za-z0-9]+)?$")


def fingerprint(settings: dict) -> str:
    """A short hash of the settings that decide an output's content (no secrets in them)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Manifest:
    def __init__(self, out_dir: Path, settings: dict, redo: bool = False) -> None:
        self.path = Path(out_dir) / MANIFEST_NAME
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        self._done: dict[str, dict] = {}
        if not redo and self.path.exists():
            for line in self.path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the last line of a killed run may be cut short
                if isinstance(entry, dict) and "input" in entry:
                    self._done[entry["input"]] = entry
        self._file = None

    def is_done(self, rel: str, src: Path, dst: Path) -> bool:
        """The file was finished by an earlier run with the same settings and is unchanged."""
        entry = self._done.get(rel)
        if not entry or entry.get("status") != "done" or entry.get("settings") != self.fingerprint:
            return False
        try:
            st = os.stat(src)
        except OSError:
            return False
        return entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns and Path(dst).exists()

    def record(self, rel: str, src: Path, dst: Path, status: str, faces: int = 0, methods: dict | None = None,
               error: str | None = None) -> None:
        entry: dict = {"input": rel, "output": str(dst), "status": status, "faces": faces,
                       "methods": methods or {}, "error": error, "settings": self.fingerprint,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            st = os.stat(src)
            entry.update(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=file_sha256(src))
        except OSError:
            pass
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            # each run that writes starts with its settings in full (file lines refer to them)
            self._file.write(json.dumps({"run": entry["time"], "settings": self.fingerprint, "of": self.settings}) + "\n")
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def remove_stale_parts(folders: set[Path]) -> int:
    """Delete the temporaries a killed run left behind in the output folders (only files named
    as :func:`~faceanon.io.atomic.atomic_path` names them). Returns how many were removed."""
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.is_file(follow_symlinks=False) and _PART.match(e.name):
                try:
                    os.unlink(e.path)
                    removed += 1
                except OSError:
                    pass
    return removed
