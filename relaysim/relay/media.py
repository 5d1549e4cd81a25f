"""``GET /media/...``: the small images the datasets' notes and profiles link to, made on request.

A dataset's media URLs point at the relay that serves it (docs/datasets.md): note images
``/media/img/N.jpg``, avatars ``/media/avatar/I-V.png`` (and the viewer's ``viewer-V.png``), banners
``/media/banner/I.jpg`` and custom emoji ``/media/emoji/CODE.png``. A client that shows them decodes
real images, so the memory it spends on them is part of what it is judged on, and no request leaves
the machine. Each image is a gradient whose colours come from the SHA-256 of its path: the same URL
gives the same pixels on every machine, and the size depends only on the folder (an avatar is
96 x 96, a banner 600 x 200, a note image 480 x 360, an emoji 32 x 32). Pillow encodes them
(PNG for ``.png``, JPEG for ``.jpg``/``.jpeg``, quality fixed); the last :data:`CACHED` answers are
kept, so a feed that shows the same avatar fifty times encodes it once.

:func:`media_image` is pure apart from the encoder: path in, ``(content type, bytes)`` or None out.
"""

from __future__ import annotations

import hashlib
import io
import re
from functools import lru_cache

__all__ = ["CACHED", "SIZES", "media_image"]

SIZES: dict[str, tuple[int, int]] = {
    "avatar": (96, 96),
    "banner": (600, 200),
    "img": (480, 360),
    "emoji": (32, 32),
}
"""Width and height of the images of each ``/media/<folder>/``."""

CACHED = 256
_NAME = re.compile(r"[A-Za-z0-9._-]{1,80}")
_TYPES = {".png": ("PNG", "image/png"), ".jpg": ("JPEG", "image/jpeg"), ".jpeg": ("JPEG", "image/jpeg")}


def media_image(path: str) -> tuple[str, bytes] | None:
    """The image at ``path`` (``/media/<folder>/<name>.<png|jpg|jpeg>``, query string already removed)
    as ``(content type, bytes)``; None for any other path (the caller answers 404)."""
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "media"] or parts[2] not in SIZES:
        return None
    name = parts[3]
    dot = name.rfind(".")
    if dot <= 0 or not _NAME.fullmatch(name) or name[dot:].lower() not in _TYPES:
        return None
    return _render(parts[2], name)


@lru_cache(maxsize=CACHED)
def _render(folder: str, name: str) -> tuple[str, bytes]:
    from PIL import Image

    fmt, content_type = _TYPES[name[name.rfind("."):].lower()]
    width, height = SIZES[folder]
    seed = hashlib.sha256(f"/media/{folder}/{name}".encode()).digest()
    start, end = seed[0:3], seed[3:6]
    # A diagonal gradient between two colours of the path's hash: cheap, and not one flat colour
    # (a flat image would compress to nothing and cost a decoder almost nothing).
    row = bytes(
        int(start[c] + (end[c] - start[c]) * x / max(1, width - 1)) for x in range(width) for c in range(3)
    )
    image = Image.frombytes("RGB", (width, height), row * height)
    shade = Image.linear_gradient("L").resize((width, height))
    image = Image.blend(image, Image.merge("RGB", (shade, shade, shade)), 0.25)
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, fmt, quality=80, optimize=False, progressive=False)
    else:
        image.save(out, fmt, optimize=False)
    return content_type, out.getvalue()
