"""``/media/...``: the dataset's images, made on request, the same bytes for the same URL everywhere."""

from __future__ import annotations

import io

import pytest
import trio
from PIL import Image
from relay_client import http_request

from relaysim.dataset import build, load_spec
from relaysim.relay import RelayConfig, open_relay
from relaysim.relay.media import SIZES, media_image


@pytest.mark.parametrize(
    ("path", "fmt", "size"),
    [
        ("/media/avatar/3-1.png", "PNG", SIZES["avatar"]),
        ("/media/avatar/viewer-2.png", "PNG", SIZES["avatar"]),
        ("/media/banner/4.jpg", "JPEG", SIZES["banner"]),
        ("/media/img/17.jpg", "JPEG", SIZES["img"]),
        ("/media/emoji/zap.png", "PNG", SIZES["emoji"]),
    ],
)
def test_each_folder_gives_a_decodable_image_of_its_size(path: str, fmt: str, size: tuple[int, int]) -> None:
    got = media_image(path)
    assert got is not None
    content_type, body = got
    image = Image.open(io.BytesIO(body))
    assert (image.format, image.size) == (fmt, size)
    assert content_type == f"image/{fmt.lower()}"
    assert any(lo != hi for lo, hi in image.getextrema())  # not one flat colour: a decoder has work


def test_same_url_same_bytes_different_url_different_pixels() -> None:
    a = media_image("/media/img/1.jpg")
    assert a == media_image("/media/img/1.jpg")
    assert a != media_image("/media/img/2.jpg")


@pytest.mark.parametrize(
    "path",
    ["/media/img/1.gif", "/media/other/1.png", "/media/img/a/b.png", "/media/img/.png", "/media/img/%2e.png",
     "/media/", "/media/img/" + "x" * 90 + ".png", "/img/1.png"],
)
def test_anything_else_is_not_an_image(path: str) -> None:
    assert media_image(path) is None


def test_every_media_url_of_seed1_is_served() -> None:
    """The dataset's notes and profiles link only to images the relay makes (no 404 in a client)."""
    import re

    urls = set()
    for ev in build(load_spec("seed1"), "ws://127.0.0.1:7447/"):
        text = ev.json if isinstance(ev.json, str) else ev.json.decode()
        urls.update(re.findall(r"http://127\.0\.0\.1:7447(/media/[^\s\"'\\]+)", text))
    assert urls, "seed1 links to media"
    missing = sorted(u for u in urls if media_image(u) is None)
    assert not missing, missing[:5]


async def test_served_over_http_unless_the_app_has_the_file(tmp_path) -> None:
    (tmp_path / "index.html").write_text("<p>app</p>")
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "logo.png").write_bytes(b"mine")
    async with open_relay(RelayConfig(static=tmp_path, test_headers=True)) as r:
        with trio.fail_after(10):
            status, headers, body = await http_request(r.http_url, path="/media/avatar/1-1.png")
            assert status == 200 and headers["content-type"] == "image/png"
            assert body == media_image("/media/avatar/1-1.png")[1]  # type: ignore[index]
            # any page may embed them, cross-origin isolated or not
            assert headers["cross-origin-resource-policy"] == "cross-origin"
            status, _, body = await http_request(r.http_url, path="/media/logo.png")
            assert (status, body) == (200, b"mine")  # the app's own file wins
            status, _, _ = await http_request(r.http_url, path="/media/img/1.gif")
            assert status == 404
