"""The harness's browser stays on loopback; the hosts a page tried are recorded (relaysim.browser.offline)."""

from __future__ import annotations

import socket

import pytest

from relaysim.browser.offline import BROWSER_HOSTS, RESOLVER_RULES, HostRecorder, parse_proxy_request


@pytest.mark.parametrize(
    ("line", "host"),
    [
        (b"CONNECT relay.damus.io:443 HTTP/1.1\r\nHost: relay.damus.io:443\r\n\r\n", "relay.damus.io:443"),
        (b"GET http://Example.com/x?y HTTP/1.1\r\n\r\n", "example.com:80"),
        (b"GET ws://nos.lol/ HTTP/1.1\r\n", "nos.lol:80"),
        (b"GET https://u:p@cdn.example.org:8443/a.png HTTP/1.1\r\n", "cdn.example.org:8443"),
        (b"GET /relative HTTP/1.1\r\n", None),
        (b"GET ftp://x/ HTTP/1.1\r\n", None),
        (b"hello\r\n", None),
        (b"", None),
    ],
)
def test_the_host_of_a_proxy_request(line: bytes, host: str | None) -> None:
    assert parse_proxy_request(line) == host


def _ask(address: str, head: bytes) -> bytes:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head)
        return conn.recv(1024)


def test_the_recorder_refuses_everything_and_counts_hosts() -> None:
    recorder = HostRecorder().start()
    try:
        assert f"--host-resolver-rules={RESOLVER_RULES}" in recorder.chromium_flags()
        assert f"--proxy-server=http://{recorder.address}" in recorder.chromium_flags()
        for _ in range(2):
            assert _ask(recorder.address, b"CONNECT relay.damus.io:443 HTTP/1.1\r\n\r\n").startswith(
                b"HTTP/1.1 403"
            )
        _ask(recorder.address, b"GET http://accounts.google.com/ HTTP/1.1\r\n\r\n")
        _ask(recorder.address, b"not http at all\r\n\r\n")
        hosts = recorder.hosts()
        assert [(h.host, h.requests, h.browser_own) for h in hosts] == [
            ("relay.damus.io:443", 2, False),
            ("accounts.google.com:80", 1, True),
        ]
    finally:
        recorder.close()
    assert "accounts.google.com" in BROWSER_HOSTS


@pytest.mark.browser
def test_a_page_reaches_loopback_only_and_its_other_hosts_are_listed(tmp_path) -> None:
    import time

    from relaysim.browser import BrowserSpec, open_browser
    from relaysim.relay import RelayConfig, SyncRelay

    (tmp_path / "index.html").write_text(
        "<!doctype html><img src='https://cdn.example.org/a.png'><script>"
        "new WebSocket('wss://relay.damus.io');"
        "const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/');"
        "ws.onopen = () => { document.title = 'relay reached'; };</script>"
    )
    with SyncRelay(RelayConfig(static=tmp_path)) as relay, open_browser(BrowserSpec()) as session:
        session.driver.get(relay.http_url + "/")
        deadline = time.monotonic() + 10
        wanted = {"cdn.example.org:443", "relay.damus.io:443"}
        while time.monotonic() < deadline:
            tried = {h.host for h in session.hosts_tried() or () if not h.browser_own}
            if session.driver.title == "relay reached" and wanted <= tried:
                break
            time.sleep(0.1)
        assert session.driver.title == "relay reached"  # loopback is not proxied
        assert tried == wanted
