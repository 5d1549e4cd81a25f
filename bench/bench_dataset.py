"""Figures for seed1: build time (target < 10 s), JSONL load + verify, and store load (< 1 s).

Run: ``python bench/bench_dataset.py [--repeat N]``. Prints one line per figure: the best of N
runs and that run's CPU time (the machine is shared: CPU time is the code's own cost).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relaysim.dataset import encode_jsonl, generate, load_spec, read_jsonl, write_jsonl

CPU = {"seconds": 0.0}


def best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs; the CPU time of that run is left in ``CPU``."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = func()
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, CPU["seconds"] = elapsed, time.process_time() - cpu
    return best, result


def cpu() -> str:
    return f"(cpu {CPU['seconds']:5.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dataset", default="seed1")
    args = parser.parse_args()

    spec = load_spec(args.dataset)
    seconds, generated = best_of(args.repeat, lambda: generate(spec))
    events = generated.events
    data = encode_jsonl(events)
    digest = hashlib.sha256(data).hexdigest()
    print(f"{args.dataset}: {len(events)} events, {len(data) / 1e6:.1f} MB JSONL, sha256 {digest}")
    rate = len(events) / seconds
    print(f"build (generate + sign)          {seconds:6.2f} s {cpu()}  {rate:6.0f} events/s   target < 10 s")
    seconds, _ = best_of(args.repeat, lambda: generate(spec, signed=False))
    print(f"cast_for (unsigned generation)   {seconds:6.2f} s {cpu()}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed1.jsonl"
        seconds, _ = best_of(args.repeat, lambda: write_jsonl(path, events))
        print(f"write JSONL                      {seconds:6.2f} s {cpu()}")
        seconds, result = best_of(args.repeat, lambda: read_jsonl(path))
        assert not result.errors and len(result.events) == len(events)
        rate = len(events) / seconds
        print(f"read JSONL + verify id and sig   {seconds:6.2f} s {cpu()}  {rate:6.0f} events/s")
        seconds, result = best_of(args.repeat, lambda: read_jsonl(path, verify=False))
        rate = len(events) / seconds
        print(f"read JSONL, no verify            {seconds:6.2f} s {cpu()}  {rate:6.0f} events/s")

    try:
        from relaysim.store import EventStore
    except ImportError:  # the store is another module; the figure is optional here
        return

    def load_store() -> Any:
        store = EventStore()
        store.load(result.events)
        return store

    seconds, store = best_of(args.repeat, load_store)
    print(f"load into EventStore             {seconds:6.2f} s {cpu()}  {len(store)} stored   target < 1 s")


if __name__ == "__main__":
    main()
