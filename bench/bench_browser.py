"""What the browser controller costs: session start, ms and WebDriver round trips per sample, probe cost.

Prints figures; asserts nothing (speed targets live here, not in timed tests). Run:

    python bench/bench_browser.py [--samples 50] [--interval 0.2]

For the reference client in both probe modes (shared-memory mirror, and ``costly-probe=1`` where each
hook read asks the Worker and allocates in the WASM heap), it reports the in-page probe cost measured from
back-to-back calls, then samples for a while and reports the sampler's own cost, then runs a short idle
window to show the raw and probe-compensated idle rates.

Then the browser-level (CDP) probes of docs/hookless.md, for the reference client (hooks, a Worker with a
WebAssembly.Memory) and the leak zoo's control page (no hooks, a small Worker): ms per sample without
and with a deep reading every 10th sample, ms per deep reading (every isolate after a forced GC, over
the browser's DevTools websocket: no WebDriver round trip), and ms per heap snapshot (``--snapshots``).
Run it under ``flock /tmp/chromium.lock`` so a browser test does not skew it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from relaysim.browser import Sampler, measure_probe_cost, open_browser
from relaysim.browser.idle import run_idle_protocol
from relaysim.browser.isolates import IsolateProbe
from relaysim.relay import RelayConfig, SyncRelay
from relaysim.scenario.adapters import load_adapter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--idle-window", type=float, default=5.0)
    ap.add_argument("--cdp-only", action="store_true", help="only the browser-level (CDP) probe costs")
    ap.add_argument("--reads", type=int, default=20, help="deep readings timed one by one")
    args = ap.parse_args()
    main_cdp(args.samples, args.reads)
    if args.cdp_only:
        return
    adapter = load_adapter("builtin")
    with SyncRelay(RelayConfig(dataset="seed1", port=0)) as relay:
        for query in ("", "?costly-probe=1"):
            started = time.perf_counter()
            with open_browser() as session:
                start_s = time.perf_counter() - started
                session.driver.get(relay.http_url + query)
                adapter.wait_ready(session.driver)
                cost = measure_probe_cost(session, 20)
                for with_cdp in (False, True):
                    sampler = Sampler(session, interval=0, cdp_metrics=with_cdp)
                    for _ in range(args.samples):
                        sampler.sample()
                    c = sampler.cost()
                    label = query or " (shared mirror)"
                    print(f"app{label} cdp={with_cdp}: {c.ms_per_sample:.2f} ms/sample, "
                          f"{c.round_trips_per_sample:.2f} round trips/sample over {c.samples} samples")
                print(f"  session start {start_s:.2f} s; probe cost {cost.bytes_per_probe:g} B/probe "
                      f"(min {cost.min_bytes:g}, max {cost.max_bytes:g}, {cost.calls_measured} calls)")
                sampler = Sampler(session, interval=args.interval)
                out = run_idle_protocol(session, sampler, relay, window=args.idle_window, settle=1,
                                        probe_cost=cost)
                m = out.measurement
                print(f"  idle over {m.window_s:.1f} s with {m.windows[0].probes} probes: "
                      f"raw {m.raw_rate:.1f} B/s, compensated {m.compensated_rate:.1f} B/s")


def cdp_probes(url: str, label: str, ready: str, samples: int, reads: int) -> None:
    """Per-sample cost with and without deep readings, and the cost of one deep reading / snapshot."""
    with open_browser() as session:
        session.driver.get(url)
        deadline = time.monotonic() + 20
        while not session.driver.execute_script(ready) and time.monotonic() < deadline:
            time.sleep(0.1)
        for every in (0, 10):
            sampler = Sampler(session, interval=0, isolates=every > 0, isolate_every=every)
            for _ in range(samples):
                sampler.sample()
            c = sampler.cost()
            deep = c.ms_per_isolate_read or 0.0
            total = (c.ms_per_sample or 0.0) + deep * c.isolate_reads / max(1, c.samples)
            print(f"{label} deep every {every or 'never'}: {c.ms_per_sample:.2f} ms/sample in WebDriver, "
                  f"{c.round_trips_per_sample:.2f} round trips/sample; {c.isolate_reads} deep readings at "
                  f"{deep:.1f} ms -> {total:.2f} ms/sample in all")
        probe = IsolateProbe(session, snapshots=True)
        ms = [probe.read(0.0).ms for _ in range(reads)]
        snap = [probe.read(0.0, snapshot=True) for _ in range(3)]
        workers = len(snap[-1].workers)
        print(f"{label} deep reading ({workers} Worker(s)): median {statistics.median(ms):.1f} ms "
              f"(min {min(ms):.1f}, max {max(ms):.1f}, n={reads}); with a heap snapshot: "
              f"{statistics.median(r.ms for r in snap):.0f} ms "
              f"({snap[-1].snapshot.snapshot_bytes / 1e6:.1f} MB snapshot)" if snap[-1].snapshot else "")


def main_cdp(samples: int, reads: int) -> None:
    zoo = Path(__file__).resolve().parents[1] / "tests" / "zoo" / "control"
    with SyncRelay(RelayConfig(dataset="seed1", port=0)) as relay:
        cdp_probes(relay.http_url, "builtin (hooks)", "return window.__relaysim_app_state?.().ready === true",
                   samples, reads)
    with SyncRelay(RelayConfig(dataset="seed1", port=0, static=zoo)) as relay:
        cdp_probes(relay.http_url, "zoo control (no hooks)",
                   "return document.querySelector('#view-a') !== null", samples, reads)


if __name__ == "__main__":
    main()
