"""Encrypted recovery payloads carried inside an output file (for the reversible `fit` method).

The payload holds the original pixels of each changed region, PNG-compressed, sealed with
AES-256-GCM under a key derived from the password by scrypt (a fresh salt and nonce per file).
It is appended after the image data, behind a fixed trailer, so every format we write keeps
decoding as usual (PNG stops at IEND, JPEG at EOI, WebP/TIFF/BMP by their sizes) and the
payload survives copying but not re-encoding: a platform that re-compresses or strips the
file removes it, and `deanonymize` then falls back to the image-only inverse.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MAGIC = b"FACEANON-FIT-1\n"
TRAILER = b"FACEANON-FIT-END"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024}


@dataclass
class Region:
    """Original pixels (RGB uint8) whose top-left corner sits at (x, y) in the image."""

    x: int
    y: int
    pixels: np.ndarray


def _key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)


def seal(regions: list[Region], password: str) -> bytes:
    """The trailer bytes to append to an image file."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header, blobs = [], []
    for r in regions:
        ok, png = cv2.imencode(".png", cv2.cvtColor(r.pixels, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding of a recovery region failed")
        header.append({"x": int(r.x), "y": int(r.y), "bytes": len(png)})
        blobs.append(png.tobytes())
    head = json.dumps(header).encode()
    plain = struct.pack(">I", len(head)) + head + b"".join(blobs)
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = MAGIC + salt + nonce + AESGCM(_key(password, salt)).encrypt(nonce, plain, MAGIC)
    return sealed + struct.pack(">Q", len(sealed)) + TRAILER


def read_trailer(path: Path) -> bytes | None:
    """The sealed payload appended to ``path``, or None if it carries none."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        tail = len(TRAILER) + 8
        if size < tail:
            return None
        f.seek(size - tail)
        end = f.read(tail)
        if end[8:] != TRAILER:
            return None
        (n,) = struct.unpack(">Q", end[:8])
        if n > size - tail:
            return None
        f.seek(size - tail - n)
        sealed = f.read(n)
    return sealed if sealed.startswith(MAGIC) else None


def open_sealed(sealed: bytes, password: str) -> list[Region] | None:
    """The regions, or None when the password does not open the payload."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    body = sealed[len(MAGIC):]
    salt, nonce, ct = body[:16], body[16:28], body[28:]
    try:
        plain = AESGCM(_key(password, salt)).decrypt(nonce, ct, MAGIC)
    except (InvalidTag, ValueError):  # wrong password, or a damaged payload
        return None
    (n,) = struct.unpack(">I", plain[:4])
    header = json.loads(plain[4 : 4 + n])
    regions, at = [], 4 + n
    for h in header:
        png = np.frombuffer(plain[at : at + h["bytes"]], np.uint8)
        at += h["bytes"]
        regions.append(Region(h["x"], h["y"], cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)))
    return regions


def changed_regions(original: np.ndarray, changed: np.ndarray, margin: int = 2) -> list[Region]:
    """The original pixels of every connected area where ``changed`` differs, as boxes."""
    diff = np.any(original != changed, axis=2).astype(np.uint8)
    if not diff.any():
        return []
    diff = cv2.dilate(diff, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(diff, connectivity=8)
    regions = []
    for x, y, w, h, _ in stats[1:n]:
        regions.append(Region(int(x), int(y), original[y : y + h, x : x + w].copy()))
    return regions


def paste(image: np.ndarray, regions: list[Region]) -> np.ndarray:
    out = image.copy()
    for r in regions:
        h, w = r.pixels.shape[:2]
        out[r.y : r.y + h, r.x : r.x + w] = r.pixels
    return out
