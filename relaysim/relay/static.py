"""Static hosting for the web app under test, on the relay's own origin.

``resolve_static(root, url_path)`` maps a request target onto a file below ``root`` and returns the
whole answer (status, headers, body) for the HTTP layer to send. It is pure apart from reading
the file, so every rule is tested without a socket.

Rules, in order:

1. The query string and fragment are ignored; the path is percent-decoded once (invalid UTF-8 is
   a 400).
2. The path is split on ``/`` and rebuilt from its non-empty segments. A segment that is ``.`` or
   ``..`` or contains a backslash or NUL is refused with 400, so ``..``, ``%2e%2e``, ``..\\`` and
   ``//etc/passwd`` cannot name anything outside ``root``.
3. The joined path is resolved (symlinks followed) and must still lie inside the resolved root;
   a symlink that leads out answers 404, as if the file did not exist.
4. ``/`` and directories serve their ``index.html``; a directory named without a trailing slash
   is redirected (301) to the slashed form so the page's relative URLs resolve as the author meant.
5. Content types come from a fixed table (``.wasm`` is ``application/wasm``, which
   ``WebAssembly.instantiateStreaming`` insists on); every response carries
   ``Cache-Control: no-store`` so a soak never measures a cache. With ``test_headers`` every
   response also carries COOP ``same-origin``, COEP ``require-corp`` and CORP ``same-origin``, which
   make the page cross-origin isolated (SharedArrayBuffer, precise memory measurement).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote

__all__ = ["CONTENT_TYPES", "TEST_HEADERS", "StaticResponse", "content_type_for", "resolve_static"]

Headers = list[tuple[bytes, bytes]]

CONTENT_TYPES = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".htm": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".map": "application/json",
        ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm",
        ".wat": "text/plain; charset=utf-8",
        ".txt": "text/plain; charset=utf-8",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".ico": "image/x-icon",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
    }
)
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: The seed's SMESH_TEST_HEADERS: what makes ``crossOriginIsolated`` true in the browser.
TEST_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


@dataclass(frozen=True)
class StaticResponse:
    """A complete HTTP answer: the relay sends ``status``, ``headers`` and ``body`` as they are."""

    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


def content_type_for(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_CONTENT_TYPE)


def _response(
    status: int, content_type: str, body: bytes, test_headers: bool, extra: Headers | None = None
) -> StaticResponse:
    headers: Headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *(extra or []),
    ]
    if test_headers:
        headers.extend(TEST_HEADERS)
    return StaticResponse(status, headers, body)


def _error(status: int, text: str, test_headers: bool) -> StaticResponse:
    return _response(status, "text/plain; charset=utf-8", f"{status} {text}\n".encode(), test_headers)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_static(root: Path, url_path: str, *, test_headers: bool = False) -> StaticResponse:
    """The answer to ``GET url_path`` for a site whose files are below ``root``."""
    raw = url_path.split("?", 1)[0].split("#", 1)[0]
    if not raw.startswith("/"):
        return _error(400, "Bad Request: path must start with /", test_headers)
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return _error(400, "Bad Request: path is not valid UTF-8", test_headers)
    segments = [segment for segment in decoded.split("/") if segment]
    for segment in segments:
        if segment in (".", "..") or "\\" in segment or "\0" in segment:
            return _error(400, "Bad Request: path leaves the site root", test_headers)

    real_root = root.resolve()
    try:
        target = real_root.joinpath(*segments).resolve()
    except (OSError, RuntimeError):  # symlink loops
        return _error(404, "Not Found", test_headers)
    if not _inside(target, real_root):
        return _error(404, "Not Found", test_headers)
    if target.is_dir():
        if segments and not raw.endswith("/"):
            location = raw + "/"
            return _response(
                301, "text/plain; charset=utf-8", b"301 Moved Permanently\n", test_headers,
                [(b"location", location.encode())],
            )  # fmt: skip
        target = (target / "index.html").resolve()
        if not _inside(target, real_root):
            return _error(404, "Not Found", test_headers)
    if not target.is_file():
        return _error(404, "Not Found", test_headers)
    try:
        body = target.read_bytes()
    except OSError:
        return _error(404, "Not Found", test_headers)
    return _response(200, content_type_for(target), body, test_headers)
