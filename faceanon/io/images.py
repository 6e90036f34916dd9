"""Image files: read with EXIF orientation applied; write without identifying metadata."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from .atomic import atomic_path

IMAGE_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                    ".tif": "TIFF", ".tiff": "TIFF"}
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass
class Picture:
    """A decoded image: RGB pixels plus what is needed to write it back faithfully."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    greyscale: bool = False
    icc_profile: bytes | None = None
    exif: bytes | None = None  # kept only for --keep-metadata


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file; every failure is an :class:`InputError` naming file and reason."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(path, f"unsupported file type {path.suffix or '(no extension)'!r}")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror or e})") from None
    if size == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; PIL still refuses absurd sizes outright.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(path, f"image is {w}x{h} = {w * h / 1e6:.0f} MP, over the limit of "
                                     f"{max_pixels / 1e6:.0f} MP (raise it with --max-pixels)")
                im.load()
                exif = im.info.get("exif")
                icc = im.info.get("icc_profile")
                im = ImageOps.exif_transpose(im)
                mode = im.mode
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(path, "not an image or an unsupported format") from None
    except Image.DecompressionBombError:
        raise InputError(path, "image too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(path, f"corrupt or truncated image ({msg})") from None
    greyscale = mode in ("L", "LA", "1", "I", "I;16", "F")
    alpha = None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[:, :, 3].copy()
        rgb = np.asarray(rgba.convert("RGB"))
    elif mode in ("I", "I;16", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = arr.max() if arr.max() > 0 else 1.0
        grey = np.clip(arr / (65535.0 if top > 255 else 255.0) * 255.0, 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        rgb = np.asarray(im.convert("RGB"))
    return Picture(rgb=np.ascontiguousarray(rgb), alpha=alpha, greyscale=greyscale, icc_profile=icc, exif=exif)


def _exif_without_orientation(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    data = Image.Exif()
    data.load(exif)
    data[0x0112] = 1  # orientation already applied to the pixels
    return data.tobytes()


def write_image(path: Path, picture: Picture, rgb: np.ndarray | None = None, quality: int = 95,
                keep_metadata: bool = False, trailer: bytes | None = None) -> None:
    """Write atomically. EXIF/GPS/XMP and text chunks are dropped unless ``keep_metadata``;
    the ICC colour profile is kept (it says how to show colours, not who or where).
    ``trailer`` is appended after the image data (a recovery payload, io/payload.py)."""
    path = Path(path)
    fmt = IMAGE_EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(path, f"cannot write file type {path.suffix or '(no extension)'!r}")
    pixels = picture.rgb if rgb is None else rgb
    if picture.greyscale:
        im = Image.fromarray(np.asarray(Image.fromarray(pixels).convert("L")))
    else:
        im = Image.fromarray(pixels, "RGB")
    if picture.alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        im = im.convert("LA" if picture.greyscale else "RGBA")
        im.putalpha(Image.fromarray(picture.alpha))
    options: dict = {}
    if picture.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = picture.icc_profile
    if keep_metadata:
        exif = _exif_without_orientation(picture.exif)
        if exif:
            options["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **options)
        if trailer:
            with open(tmp, "ab") as f:
                f.write(trailer)
