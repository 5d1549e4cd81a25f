"""What the browser controller costs: session start, ms and WebDriver round trips per sample, probe cost.

Prints figures; asserts nothing (speed targets live here, not in timed tests). Run:

    python bench/bench_browser.py [--samples 50] [--interval 0.2]

For the reference client in both probe modes (shared-memory mirror, and ``costly-probe=1`` where each
hook read asks the Worker and allocates in the WASM heap), it reports the in-page probe cost measured from
back-to-back calls, then samples for a while and reports the sampler's own cost, then runs a short idle
window to show the raw and probe-compensated idle rates.
"""

from __future__ import annotations

import argparse
import time

from relaysim.browser import Sampler, measure_probe_cost, open_browser
from relaysim.browser.idle import run_idle_protocol
from relaysim.relay import SyncRelay
from relaysim.scenario.adapters import load_adapter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--idle-window", type=float, default=5.0)
    args = ap.parse_args()
    adapter = load_adapter("builtin")
    with SyncRelay(dataset="seed1", port=0) as relay:
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


if __name__ == "__main__":
    main()
