"""The browser controller: start a browser, read memory figures, sample a timeline, measure idle.

Public surface: :func:`open_browser` / :class:`BrowserSpec` / :class:`BrowserSession` (drivers),
:func:`read_app` / :func:`read_browser_figures` / :func:`measure_probe_cost` (probes), :class:`Sampler`.
"""

from relaysim.browser.drivers import BROWSER_KINDS, BrowserSession, BrowserSpec, CdpUnavailable, open_browser
from relaysim.browser.probes import (
    AppSample,
    BrowserFigures,
    Unavailable,
    call_close_all,
    measure_probe_cost,
    read_app,
    read_browser_figures,
)
from relaysim.browser.sampler import Sampler, sample_figures

__all__ = [
    "BROWSER_KINDS",
    "AppSample",
    "BrowserFigures",
    "BrowserSession",
    "BrowserSpec",
    "CdpUnavailable",
    "Sampler",
    "Unavailable",
    "call_close_all",
    "measure_probe_cost",
    "open_browser",
    "read_app",
    "read_browser_figures",
    "sample_figures",
]
