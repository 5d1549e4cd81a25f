"""``relaysim serve`` as a user runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import trio
from relay_client import connect, signed_note

from relaysim.cli import main
from relaysim.nostr.messages import encode_client_event, encode_req


async def start_serve(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start ``relaysim serve`` and read the URLs it prints when ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaysim", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    while "ready" not in urls:
        line = await trio.to_thread.run_sync(proc.stdout.readline)
        if not line:
            raise AssertionError(f"serve exited early: {proc.wait()} {proc.stderr.read()}")
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "relaysim:":
            urls[parts[1]] = parts[2] if parts[1] != "ready" else line.strip()
    return proc, urls


async def test_serve_empty_jsonl_accepts_publishes_and_sigterm_closes_with_1001(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with trio.fail_after(60):
        proc, urls = await start_serve("--dataset", str(empty))
        try:
            assert urls["relay"].startswith("ws://127.0.0.1:") and urls["app"].startswith("http://127.0.0.1:")
            assert urls["stats"] == urls["app"] + "stats"
            assert "0 events from empty.jsonl" in urls["ready"]
            client = await connect(urls["relay"])
            await client.send(encode_req("all", {"limit": 10}))
            events, _ = await client.recv_until_eose("all")
            assert events == []
            ev = signed_note(1234, "published to an empty relay")
            await client.send(encode_client_event(ev))
            assert await client.recv_json() == ["OK", ev.id, True, ""]
            proc.send_signal(signal.SIGTERM)
            code, reason = await client.wait_closed()
            assert (code, reason) == (1001, "relay shutting down")
            assert await trio.to_thread.run_sync(proc.wait, 20) == 0
            assert "SIGTERM: closing connections" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_serve_ctrl_c_is_a_clean_exit(tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_bytes(signed_note(1, "x").json + b"\n")
    with trio.fail_after(60):
        proc, urls = await start_serve("--dataset", str(data))
        try:
            assert "1 events from one.jsonl" in urls["ready"]
            proc.send_signal(signal.SIGINT)
            assert await trio.to_thread.run_sync(proc.wait, 20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "relaysim: error: --port must be between 0 and 65535, got 70000"),
        (["--max-events", "0"], "relaysim: error: --max-events must be a positive number, got 0"),
        (["--dataset", "nope-not-a-dataset"], "relaysim: error: unknown dataset 'nope-not-a-dataset'"),
        (["--static", "/no/such/dir"], "relaysim: error: --static /no/such/dir: not a directory"),
    ],
)
def test_serve_usage_errors_exit_2(args, message, capsys):
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_serve_bad_jsonl_line_and_traffic_without_cast_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(signed_note(1, "x").json + b"\n{not json}\n")
    assert main(["serve", "--port", "0", "--dataset", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"relaysim: error: {bad}: 1 bad line(s); line 2: invalid: not JSON")
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"")
    assert main(["serve", "--port", "0", "--dataset", str(good), "--traffic", "notes=1/s"]) == 2
    assert "--traffic needs a named dataset" in capsys.readouterr().err


def test_non_loopback_bind_warns(tmp_path, capsys):
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"")
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the bind fails after the warning is printed.
    start = time.monotonic()
    assert main(["serve", "--host", "192.0.2.1", "--port", "0", "--dataset", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relaysim: warning: binding 192.0.2.1 exposes the relay")
    assert "relaysim: error: cannot listen on 192.0.2.1:0" in err
    assert time.monotonic() - start < 10
