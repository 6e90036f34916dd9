"""Encrypted recovery payloads carried inside an output file (for the reversible `fit` method).

The payload holds the original pixels of each changed region, PNG-compressed, and the image
size, sealed with AES-256-GCM. It is appended after the image data, behind a fixed trailer, so
every format we write keeps decoding as usual (PNG stops at IEND, JPEG at EOI, WebP/TIFF/BMP by
their sizes) and the payload survives copying but not re-encoding: a platform that
re-compresses or strips the file removes it, and `deanonymize` then falls back to the
image-only inverse.

Cryptography (format 2):

* Key: scrypt (memory-hard) from the UTF-8 password and a fresh random 16-byte salt per file,
  N = 2**15, r = 8, p = 1: 32 MiB and about 0.1 s per guess on one core. The parameters are
  stored in the payload, so later versions can raise them; a file asking for more than
  N = 2**20 (1 GiB) is refused rather than allowed to exhaust memory.
* Cipher: AES-256-GCM with a fresh random 96-bit nonce per file. Because the salt is fresh too,
  every file has its own key, so a nonce can never repeat under one key, even if the random
  generator repeated a nonce. The header (magic and KDF parameters) is authenticated as
  associated data.
* Damage and tampering: a SHA-256 checksum of the sealed bytes sits in the trailer. A file cut
  short, or whose payload bytes changed by accident, fails the checksum or the trailer and
  gives :class:`PayloadError` (a clear error; nothing is written). When the checksum holds but
  GCM refuses the key, the password is wrong (or someone forged the checksum): that is the
  wrong-password case, never a face pasted from bad bytes.
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

MAGIC_V1 = b"FACEANON-FIT-1\n"  # read for files written before format 2 (no checksum, fixed KDF)
MAGIC = b"FACEANON-FIT-2\n"
TRAILER = b"FACEANON-FIT-END"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAX_N = 2**20
_CHECKSUM = 32


class PayloadError(Exception):
    """A recovery payload that is present but truncated or damaged."""


@dataclass
class Region:
    """Original pixels (RGB uint8) whose top-left corner sits at (x, y) in the image."""

    x: int
    y: int
    pixels: np.ndarray


@dataclass
class Recovery:
    """What an opened payload holds: the original regions and the size of the image they
    belong to (None for format 1)."""

    regions: list[Region]
    size: tuple[int, int] | None = None  # (height, width)


def derive_key(password: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> bytes:
    """The 32-byte AES key: scrypt, which needs 128 * n * r bytes of memory."""
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=128 * n * r + (1 << 20))


def seal(regions: list[Region], password: str, size: tuple[int, int] | None = None) -> bytes:
    """The trailer bytes to append to an image file of ``size`` (height, width)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header, blobs = [], []
    for r in regions:
        ok, png = cv2.imencode(".png", cv2.cvtColor(r.pixels, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("PNG encoding of a recovery region failed")
        header.append({"x": int(r.x), "y": int(r.y), "bytes": len(png)})
        blobs.append(png.tobytes())
    head = json.dumps({"regions": header, "size": list(size) if size else None}).encode()
    plain = struct.pack(">I", len(head)) + head + b"".join(blobs)
    aad = MAGIC + struct.pack(">IBB", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = aad + salt + nonce + AESGCM(derive_key(password, salt)).encrypt(nonce, plain, aad)
    return sealed + hashlib.sha256(sealed).digest() + struct.pack(">Q", len(sealed)) + TRAILER


def read_trailer(path: Path) -> bytes | None:
    """The sealed payload appended to ``path``; None if the file carries none. Raises
    :class:`PayloadError` when a payload is there but cut short or damaged."""
    data = Path(path).read_bytes()
    if not data.endswith(TRAILER):
        if MAGIC in data or MAGIC_V1 in data:
            raise PayloadError("its recovery payload is truncated (the file was cut short or data was appended)")
        return None
    (n,) = struct.unpack(">Q", data[-len(TRAILER) - 8 : -len(TRAILER)])
    end = len(data) - len(TRAILER) - 8
    if n > end:
        raise PayloadError("its recovery payload is truncated (length field beyond the file)")
    # format 2: sealed + checksum; format 1: sealed alone
    if n + _CHECKSUM <= end and data[end - _CHECKSUM - n : end - _CHECKSUM - n + len(MAGIC)] == MAGIC:
        sealed, checksum = data[end - _CHECKSUM - n : end - _CHECKSUM], data[end - _CHECKSUM : end]
        if hashlib.sha256(sealed).digest() != checksum:
            raise PayloadError("its recovery payload is damaged (checksum mismatch)")
        return sealed
    if data[end - n : end - n + len(MAGIC_V1)] == MAGIC_V1:
        return data[end - n : end]
    raise PayloadError("its recovery payload is damaged (no payload header where the trailer points)")


def open_sealed(sealed: bytes, password: str) -> Recovery | None:
    """The regions, or None when the password does not open the payload. Raises
    :class:`PayloadError` for a payload whose contents cannot be used."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if sealed.startswith(MAGIC):
        aad = sealed[: len(MAGIC) + 6]
        n, r, p = struct.unpack(">IBB", aad[len(MAGIC):])
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise PayloadError(f"its recovery payload asks for unsupported key parameters (N={n}, r={r}, p={p})")
        body = sealed[len(aad):]
    else:  # format 1
        aad, (n, r, p), body = MAGIC_V1, (SCRYPT_N, SCRYPT_R, SCRYPT_P), sealed[len(MAGIC_V1):]
    salt, nonce, ct = body[:16], body[16:28], body[28:]
    if len(nonce) != 12 or len(ct) < 16:
        raise PayloadError("its recovery payload is truncated")
    try:
        plain = AESGCM(derive_key(password, salt, n, r, p)).decrypt(nonce, ct, aad)
    except InvalidTag:  # wrong password (the checksum already ruled out accidental damage)
        return None
    try:
        (k,) = struct.unpack(">I", plain[:4])
        header = json.loads(plain[4 : 4 + k])
        entries, size = (header, None) if isinstance(header, list) else (header["regions"], header["size"])
        regions, at = [], 4 + k
        for h in entries:
            png = np.frombuffer(plain[at : at + h["bytes"]], np.uint8)
            at += h["bytes"]
            bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError("region does not decode")
            regions.append(Region(int(h["x"]), int(h["y"]), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    except (ValueError, KeyError, TypeError, struct.error) as e:
        raise PayloadError(f"its recovery payload is damaged ({e})") from None
    return Recovery(regions, tuple(size) if size else None)


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


def paste(image: np.ndarray, recovery: Recovery) -> np.ndarray:
    """The image with its original regions back. Raises :class:`PayloadError` when the payload
    belongs to an image of another size (cropped or resized since)."""
    if recovery.size is not None and tuple(recovery.size) != image.shape[:2]:
        raise PayloadError(f"its recovery payload belongs to a {recovery.size[1]}x{recovery.size[0]} image, "
                           f"not {image.shape[1]}x{image.shape[0]} (resized or cropped since)")
    out = image.copy()
    for r in recovery.regions:
        h, w = r.pixels.shape[:2]
        if r.x < 0 or r.y < 0 or r.y + h > image.shape[0] or r.x + w > image.shape[1]:
            raise PayloadError("its recovery payload does not fit the image (resized or cropped since)")
        out[r.y : r.y + h, r.x : r.x + w] = r.pixels
    return out
