"""The browser controller: start a browser, read memory figures, sample a timeline, measure idle.

Public surface: :func:`open_browser` / :class:`BrowserSpec` / :class:`BrowserSession` (drivers),
:func:`read_app` / :func:`read_browser_figures` / :func:`measure_probe_cost` (probes), :class:`Sampler`.
"""

from relaysim.browser.drivers import BROWSER_KINDS, BrowserSession, BrowserSpec, CdpUnavailable, open_browser
from relaysim.browser.probes import (
    AppSample,
    BrowserFigures,
    ProbeCost,
    Unavailable,
    call_close_all,
    measure_probe_cost,
    read_app,
    read_browser_figures,
)
from relaysim.browser.sampler import Sampler

__all__ = [
    "BROWSER_KINDS",
    "AppSample",
    "BrowserFigures",
    "BrowserSession",
    "BrowserSpec",
    "CdpUnavailable",
    "ProbeCost",
    "Sampler",
    "Unavailable",
    "call_close_all",
    "measure_probe_cost",
    "open_browser",
    "read_app",
    "read_browser_figures",
]
