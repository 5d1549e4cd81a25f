"""A run's injected faults: switching them on the relay, and what they were for the report.

A scenario's ``[faults]`` table starts a local relay with those faults (``_app.open_relay``); a
``faults`` step switches them during the run. Both reach the relay the same way whether it runs in
this process or at ``--relay-url``: ``POST /control/faults?spec=...`` on its loopback control
endpoint, so a run against an external relaysim relay injects exactly what a local run does.
:func:`fault_figures` turns the relay's ``/stats`` ``faults`` object into the report's typed
:class:`~relaysim.report.FaultFigures`, with each fault's time on the run's own clock.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from relaysim.errors import EnvironmentProblem, UsageError
from relaysim.report import FaultFigures, FaultRecord

__all__ = ["fault_figures", "fault_note", "switch_faults"]


def switch_faults(relay: Any, spec: str, seed: int | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Put ``spec`` (``--faults`` text, ``""``/``off``: none) in force on ``relay`` now; its answer.

    ``relay`` is anything with ``http_url`` (a :class:`~relaysim.relay.SyncRelay` or a
    ``--relay-url`` handle)."""
    base = getattr(relay, "http_url", None)
    if not base:
        raise UsageError("faults need a relay with an HTTP address to steer")
    params: dict[str, Any] = {"spec": spec or "off"}
    if seed is not None:
        params["seed"] = seed
    url = f"{str(base).rstrip('/')}/control/faults?{urlencode(params)}"
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        lines = exc.read().decode("utf-8", "replace").strip().splitlines()
        raise EnvironmentProblem(
            f"relay {base} answered {exc.code} to POST /control/faults: {lines[0] if lines else ''}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise EnvironmentProblem(f"relay {base} did not answer POST /control/faults ({exc})") from None


def fault_figures(stats: dict[str, Any] | None, started_at: float) -> FaultFigures | None:
    """The report's fault figures from ``/stats`` (None: the relay reports no faults section)."""
    doc = (stats or {}).get("faults")
    if not isinstance(doc, dict):
        return None
    counts = doc.get("counts", {})
    return FaultFigures(
        spec=str(doc.get("spec", "")),
        seed=doc.get("seed"),
        events_dropped=int(counts.get("events_dropped", 0)),
        frames_delayed=int(counts.get("frames_delayed", 0)),
        delay_seconds_max=float(counts.get("delay_seconds_max", 0.0)),
        disconnects_close=int(counts.get("disconnects_close", 0)),
        disconnects_reset=int(counts.get("disconnects_reset", 0)),
        upgrades_refused=int(counts.get("upgrades_refused", 0)),
        logged=int(doc.get("logged", 0)),
        events=tuple(
            FaultRecord(
                t=round(float(e["at"]) - started_at, 3), conn=e.get("conn"), fault=str(e["fault"]),
                detail=str(e.get("detail", "")),
            )
            for e in doc.get("events", [])
        ),
    )


def fault_note(figures: FaultFigures | None) -> str | None:
    """One sentence for the report's notes: what was injected, or None when nothing was."""
    if figures is None:
        return None
    f = figures
    counts = (f.events_dropped, f.frames_delayed, f.disconnects_close, f.disconnects_reset)
    injected = sum(counts) + f.upgrades_refused
    if not injected and not f.spec and not any(r.fault == "spec" for r in f.events):
        return None
    parts = [
        f"{f.disconnects_close} disconnect(s) with close 1001",
        f"{f.disconnects_reset} TCP reset(s)",
        f"{f.upgrades_refused} upgrade(s) refused with 503",
        f"{f.events_dropped} EVENT frame(s) withheld",
        f"{f.frames_delayed} frame(s) delayed (at most {f.delay_seconds_max * 1000:.0f} ms)",
    ]
    spec = f.spec or "off"
    return f"faults injected (seed {f.seed}, spec at the end: {spec}): " + ", ".join(parts)
