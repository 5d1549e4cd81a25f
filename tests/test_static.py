"""resolve_static: every rule on a real temporary directory tree (no sockets needed)."""

from __future__ import annotations

from pathlib import Path

import h11
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from relaysim.relay import RelayConfig, open_relay
from relaysim.relay.static import CONTENT_TYPES, TEST_HEADERS, resolve_static

WASM = b"\0asm\x01\0\0\0"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site root with a sibling directory holding a secret, and symlinks in both directions."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>root</title>")
    (root / "app.js").write_text("export const x = 1;")
    (root / "mod.mjs").write_text("export default 2;")
    (root / "heap.wasm").write_bytes(WASM)
    (root / "heap.wat").write_text("(module)")
    (root / "data.json").write_text('{"a":1}')
    (root / "style.css").write_text("body{}")
    (root / "logo.svg").write_text("<svg/>")
    (root / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "blob.bin").write_bytes(b"\x01\x02")
    (root / "UPPER.WASM").write_bytes(WASM)
    (root / "with space.txt").write_text("spaced")
    (root / "caf\u00e9.txt").write_text("accent")
    sub = root / "sub"
    sub.mkdir()
    (sub / "index.html").write_text("<title>sub</title>")
    (sub / "page.html").write_text("<title>page</title>")
    (root / "empty").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    (outside / "index.html").write_text("<title>outside</title>")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    (root / "inner-link.js").symlink_to(root / "app.js")
    (root / "loop").symlink_to(root / "loop")
    (root / "dir-with-bad-index").mkdir()
    (root / "dir-with-bad-index" / "index.html").symlink_to(outside / "index.html")
    return root


def test_root_serves_index_html(site: Path) -> None:
    response = resolve_static(site, "/", test_headers=False)
    assert response.status == 200
    assert response.body == b"<!doctype html><title>root</title>"
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.header("content-length") == str(len(response.body))
    assert response.header("cache-control") == "no-store"


def test_directory_with_slash_serves_its_index(site: Path) -> None:
    response = resolve_static(site, "/sub/", test_headers=False)
    assert (response.status, response.body) == (200, b"<title>sub</title>")


def test_directory_without_slash_redirects_to_slash(site: Path) -> None:
    response = resolve_static(site, "/sub?x=1", test_headers=False)
    assert response.status == 301
    assert response.header("location") == "/sub/"


def test_directory_without_index_is_404(site: Path) -> None:
    assert resolve_static(site, "/empty/", test_headers=False).status == 404


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/heap.wasm", "application/wasm"),
        ("/UPPER.WASM", "application/wasm"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/mod.mjs", "text/javascript; charset=utf-8"),
        ("/heap.wat", "text/plain; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/logo.svg", "image/svg+xml"),
        ("/icon.png", "image/png"),
        ("/sub/page.html", "text/html; charset=utf-8"),
        ("/blob.bin", "application/octet-stream"),
    ],
)
def test_content_types(site: Path, path: str, content_type: str) -> None:
    response = resolve_static(site, path, test_headers=False)
    assert response.status == 200
    assert response.header("content-type") == content_type
    assert response.body == (site / path.lstrip("/")).read_bytes()


def test_wasm_body_is_exact_bytes(site: Path) -> None:
    assert resolve_static(site, "/heap.wasm", test_headers=False).body == WASM


def test_query_string_and_fragment_are_ignored(site: Path) -> None:
    response = resolve_static(site, "/app.js?v=123&x=../../etc#frag", test_headers=False)
    assert (response.status, response.body) == (200, b"export const x = 1;")
    assert resolve_static(site, "/?cache=bust", test_headers=False).status == 200


def test_percent_decoding(site: Path) -> None:
    assert resolve_static(site, "/with%20space.txt", test_headers=False).body == b"spaced"
    assert resolve_static(site, "/caf%C3%A9.txt", test_headers=False).body == b"accent"
    assert resolve_static(site, "/%61pp.js", test_headers=False).body == b"export const x = 1;"


def test_invalid_utf8_percent_escape_is_400(site: Path) -> None:
    response = resolve_static(site, "/%ff.txt", test_headers=False)
    assert (response.status, response.body) == (400, b"400 Bad Request: path is not valid UTF-8\n")


def test_missing_file_is_404(site: Path) -> None:
    response = resolve_static(site, "/nope.js", test_headers=False)
    assert (response.status, response.body) == (404, b"404 Not Found\n")
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert resolve_static(site, "/sub/nope/", test_headers=False).status == 404
    assert resolve_static(site, "/app.js/extra", test_headers=False).status == 404


TRAVERSALS = [
    "/../outside/secret.txt",
    "/sub/../../outside/secret.txt",
    "/..",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2E/outside/secret.txt",
    "/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/..%2foutside%2fsecret.txt",
    "/..%5coutside%5csecret.txt",
    "/..\\outside\\secret.txt",
    "/sub\\..\\..\\outside\\secret.txt",
    "/app.js%00.png",
    "/app.js\0",
    "/./app.js",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused(site: Path, path: str) -> None:
    response = resolve_static(site, path, test_headers=False)
    assert (response.status, response.body) == (400, b"400 Bad Request: path leaves the site root\n")


ABSOLUTES = ["//etc/passwd", "///etc//passwd", "/%2fetc%2fpasswd", "//" + str(Path.cwd()).lstrip("/")]


@pytest.mark.parametrize("path", ABSOLUTES)
def test_absolute_paths_stay_inside_root(site: Path, path: str) -> None:
    # Empty segments are dropped, so "//etc/passwd" names <root>/etc/passwd, which does not exist.
    response = resolve_static(site, path, test_headers=False)
    assert response.status == 404
    assert b"root:" not in response.body


def test_target_without_leading_slash_is_400(site: Path) -> None:
    assert resolve_static(site, "app.js", test_headers=False).status == 400
    assert resolve_static(site, "http://evil/app.js", test_headers=False).status == 400


def test_symlink_to_file_outside_root_is_404(site: Path) -> None:
    response = resolve_static(site, "/escape.txt", test_headers=False)
    assert response.status == 404
    assert b"SECRET" not in response.body


def test_symlinked_directory_outside_root_is_404(site: Path) -> None:
    for path in ("/escape-dir/secret.txt", "/escape-dir/", "/escape-dir/index.html"):
        response = resolve_static(site, path, test_headers=False)
        assert response.status == 404, path
        assert b"SECRET" not in response.body and b"outside" not in response.body


def test_index_html_symlinked_outside_is_404(site: Path) -> None:
    assert resolve_static(site, "/dir-with-bad-index/", test_headers=False).status == 404


def test_symlink_inside_root_is_served(site: Path) -> None:
    response = resolve_static(site, "/inner-link.js", test_headers=False)
    assert (response.status, response.body) == (200, b"export const x = 1;")


def test_symlink_loop_is_404(site: Path) -> None:
    assert resolve_static(site, "/loop", test_headers=False).status == 404


def test_root_given_through_a_symlink(site: Path, tmp_path: Path) -> None:
    link = tmp_path / "site-link"
    link.symlink_to(site, target_is_directory=True)
    assert resolve_static(link, "/app.js", test_headers=False).status == 200
    assert resolve_static(link, "/escape.txt", test_headers=False).status == 404


@pytest.mark.parametrize("path", ["/", "/heap.wasm", "/nope", "/../x", "/sub"])
def test_test_headers_on_every_response(site: Path, path: str) -> None:
    response = resolve_static(site, path, test_headers=True)
    assert response.header("cross-origin-opener-policy") == "same-origin"
    assert response.header("cross-origin-embedder-policy") == "require-corp"
    assert response.header("cross-origin-resource-policy") == "same-origin"
    assert response.header("cache-control") == "no-store"
    plain = resolve_static(site, path, test_headers=False)
    assert plain.status == response.status
    for name, _ in TEST_HEADERS:
        assert plain.header(name.decode()) is None


def test_headers_are_bytes_pairs(site: Path) -> None:
    response = resolve_static(site, "/heap.wasm", test_headers=True)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in response.headers)
    assert len({k for k, _ in response.headers}) == len(response.headers)


def test_content_type_table_covers_the_client_files() -> None:
    for suffix in (".html", ".js", ".mjs", ".wasm", ".wat", ".json", ".css", ".svg", ".png"):
        assert suffix in CONTENT_TYPES


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("./\\%2eEfF0aA5c:~ ")), max_size=40))
def test_no_request_path_reads_outside_the_root(tmp_path_factory: pytest.TempPathFactory, tail: str) -> None:
    # Arbitrary mixtures of dots, slashes, backslashes and percent escapes never reach the
    # secret next to the root, and never raise.
    base = tmp_path_factory.getbasetemp() / "fuzz"
    root = base / "site"
    if not root.exists():
        root.mkdir(parents=True)
        (root / "index.html").write_text("ok")
        (base / "secret.txt").write_text("TOP SECRET")
    response = resolve_static(root, "/" + tail, test_headers=False)
    assert response.status in (200, 301, 400, 404)
    assert b"SECRET" not in response.body


# -- through the relay's socket ----------------------------------------------------------------


async def _raw_get(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``target`` byte for byte (no client-side normalisation of ``..``) and read the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=target, headers=[("Host", f"127.0.0.1:{port}")])
        await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, b""
        with trio.fail_after(10):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return status, headers, body


async def test_relay_serves_the_site_with_test_headers(site: Path) -> None:
    async with open_relay(RelayConfig(static=site, test_headers=True, port=0)) as relay:
        port = int(relay.http_url.rstrip("/").rsplit(":", 1)[1])
        status, headers, body = await _raw_get(port, "/heap.wasm?v=1")
        assert (status, body) == (200, WASM)
        assert headers["content-type"] == "application/wasm"
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cross-origin-embedder-policy"] == "require-corp"
        assert headers["cross-origin-resource-policy"] == "same-origin"
        status, headers, body = await _raw_get(port, "/")
        assert (status, body) == (200, b"<!doctype html><title>root</title>")
        for target in ("/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/escape.txt"):
            status, headers, body = await _raw_get(port, target)
            assert status in (400, 404), target
            assert b"SECRET" not in body
            assert headers["cross-origin-embedder-policy"] == "require-corp"
