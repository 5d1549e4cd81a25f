"""relaysim side by side with peer relays, under a load generator measured first against nothing.

Run: ``python3 bench/peers.py [--quick] [--out peers.json] [--only relaysim,localrelay] [--scratch DIR]``

It installs the peers into a scratch folder (``~/.cache/relaysim-bench``: a venv for PyPI
``nostr-sdk`` and ``nostr-relay``, ``npm install`` for ``@nostr-relay/*``), then for each target --
the do-nothing endpoint first (its figures are the generator's ceiling), relaysim, rust-nostr's
LocalRelay, the TypeScript ``@nostr-relay/core``, PyPI ``nostr-relay`` -- starts it fresh on
127.0.0.1 with seed1, publishes the same 20,000 signed notes, and measures the rows of issue 14.
Each target is stopped before the next starts, and every row is bounded in time. It prints one
table and writes every figure, each answer check and the machine's load to ``--out``.

The figures are for one machine at one moment: run it under ``flock /tmp/chromium.lock`` so a
browser run does not share the CPU, and read the ratios rather than the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from peerbench import check, rows
from peerbench.peers import PeerError, Running, describe_versions, start
from peerbench.workload import FANOUT_TAG, build_workload, reference_answers

TARGETS = ["null", "relaysim", "localrelay", "nostr-relay-ts", "nostr-relay-py"]
TITLES = {
    "null": "generator ceiling",
    "relaysim": "relaysim",
    "localrelay": "LocalRelay (rust)",
    "nostr-relay-ts": "@nostr-relay (TS)",
    "nostr-relay-py": "nostr-relay (py)",
}
# (key, label, higher is better)
ROWS = [
    ("ready_s", "serve ready, s", False),
    ("rss_loaded_mb", "RSS with seed1, MB", False),
    ("publish_per_s", "publish + OK, events/s (20k, 4 conns)", True),
    ("queryable_ms", "published -> queryable, ms", False),
    ("req_p50_ms", "REQ->EOSE p50, ms (limit-50 mix)", False),
    ("req_p99_ms", "REQ->EOSE p99, ms", False),
    ("queries_per_s", "8 conns: queries/s", True),
    ("streamed_per_s", "8 conns: events/s", True),
    ("big_req_per_s", "one large REQ: events/s", True),
    ("fanout_last_ms", "fan-out 1,000 conns: last delivery, ms", False),
    ("fanout_per_s", "fan-out sustained: deliveries/s", True),
    ("rss_per_conn_kb", "RSS per idle connection, KB", False),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_load() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    return {"cores": os.cpu_count(), "load_1m": load1, "load_5m": load5, "load_15m": load15}


def measure(running: Running, work: Any, expected: dict[str, Any], quick: bool) -> dict[str, Any]:
    port = running.port
    out: dict[str, Any] = {"notes": running.notes, "ready_s": running.ready_s}
    out["rss_loaded_mb"] = running.rss() / 2**20
    pub = rows.publish(port, work.publish, conns=4, procs=2, deadline=60 if quick else 120)
    out["publish_per_s"] = pub["per_s"]
    out["publish"] = {k: v for k, v in pub.items() if k != "payloads"}
    out["publish_check"] = check.check_publish(pub["payloads"], len(work.publish))
    found = rows.queryable(port, [ev.id for ev in work.publish[-20:]])
    out["queryable_ms"] = None if found is None else 1000 * found
    lat = rows.req_latency(port, work.mix, rounds=300 if quick else 1500, deadline=30 if quick else 60)
    out["req_p50_ms"], out["req_p99_ms"] = lat["p50_ms"], lat["p99_ms"]
    out["req_check"] = check.check_queries(lat["answers"], expected["mix"], work.mix)
    conc = rows.concurrent_queries(port, work.mix, conns=8, procs=2, seconds=3 if quick else 8)
    out["queries_per_s"], out["streamed_per_s"] = conc["queries_per_s"], conc["events_per_s"]
    big = rows.big_req(port, work.big, rounds=3 if quick else 7, deadline=30)
    out["big_req_per_s"] = big["per_s"]
    out["big_req_check"] = check.check_queries([big["answer"]], [expected["big"]], [work.big])
    n_lat = 5 if quick else 11
    fan = rows.fanout(
        port,
        work.fanout[:n_lat],
        work.fanout[n_lat:],
        conns=1000,
        procs=2,
        tag=FANOUT_TAG,
        rss=running.rss,
        deadline=60,
    )
    out["fanout_last_ms"] = fan["last_delivery_ms"]
    out["fanout_per_s"] = fan["sustained_deliveries_per_s"]
    out["rss_per_conn_kb"] = fan["rss_per_idle_connection_kb"]
    out["fanout"] = {k: v for k, v in fan.items() if k not in ("deliveries", "sample")}
    out["fanout_check"] = check.check_fanout(fan["deliveries"], fan["sample"], [ev.id for ev in work.fanout])
    out["rss_end_mb"] = running.rss() / 2**20
    return out


def ratio(row: tuple[str, str, bool], results: dict[str, dict[str, Any]]) -> str:
    key, _, higher = row
    ours = results.get("relaysim", {}).get(key)
    peers = [r.get(key) for name, r in results.items() if name not in ("relaysim", "null") and r.get(key)]
    if not ours or not peers:
        return "-"
    best = max(peers) if higher else min(peers)
    return f"{(ours / best if higher else best / ours):.2f}x"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    return str(value)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    names = [n for n in TARGETS if n in results]
    header = ["row", *[TITLES[n] for n in names], "relaysim vs best peer"]
    table = [header]
    for row in ROWS:
        table.append([row[1], *[fmt(results[n].get(row[0])) for n in names], ratio(row, results)])
    checks = ["answers exact (mix, big REQ, fan-out)"]
    for n in names:
        r = results[n]
        if "error" in r:
            checks.append("error")
            continue
        if n == "null":
            checks.append("n/a (canned)")
            continue
        req, big, fan = r["req_check"], r["big_req_check"], r["fanout_check"]
        checks.append(
            f"{req['exact']}/{req['queries']}, {big['exact']}/1, {'ok' if fan['all_complete'] else 'short'}"
        )
    table.append([*checks, ""])
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for i, line in enumerate(table):
        print(
            "  ".join(
                str(cell).rjust(w) if j else str(cell).ljust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter windows (~3 min)")
    parser.add_argument(
        "--out", type=Path, default=Path("peers.json"), help="JSON results (default peers.json)"
    )
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma list of {', '.join(TARGETS)}")
    parser.add_argument("--scratch", type=Path, default=Path.home() / ".cache" / "relaysim-bench")
    parser.add_argument(
        "--relaysim-port", type=int, default=7591, help="fixed, so its dataset cache is reused"
    )
    args = parser.parse_args(argv)
    targets = [t for t in args.only.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    started = time.time()
    work = build_workload(
        args.scratch, f"ws://127.0.0.1:{args.relaysim_port}/", publish=20_000, fanout=31, big_limit=5_000
    )
    now = time.time()
    expected_all = reference_answers(work.seed + work.publish, [*work.mix, work.big], now)
    expected = {"mix": expected_all[:-1], "big": expected_all[-1]}
    canned = args.scratch / "canned-event.json"
    canned.write_bytes(next(ev.json for ev in work.seed if ev.kind == 1))
    results: dict[str, dict[str, Any]] = {}
    load_before = machine_load()
    for name in targets:
        port = args.relaysim_port if name == "relaysim" else free_port()
        print(f"bench/peers: {TITLES[name]} on port {port} ...", file=sys.stderr, flush=True)
        running = None
        try:

            def load_over_ws(p: int) -> None:
                done = rows.publish(p, work.seed, conns=4, procs=2, deadline=120)
                if not done["complete"]:
                    raise PeerError(
                        f"loading seed1 over the websocket took over 120 s ({done['acked']} acked)"
                    )

            running = start(
                name, port, work.seed_path, args.scratch, load_over_ws=load_over_ws, canned=canned
            )
            results[name] = measure(running, work, expected, args.quick)
        except (PeerError, OSError, TimeoutError) as exc:
            results[name] = {"error": str(exc)}
            print(f"bench/peers: {name}: {exc}", file=sys.stderr)
        finally:
            if running is not None:
                running.stop()
    doc = {
        "when": started,
        "seconds": time.time() - started,
        "quick": args.quick,
        "machine": {"before": load_before, "after": machine_load()},
        "versions": describe_versions(args.scratch),
        "rows": [{"key": k, "label": label, "higher_is_better": h} for k, label, h in ROWS],
        "results": results,
    }
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print_table(results)
    print(
        f"\nmachine: {load_before['cores']} cores, load {load_before['load_1m']:.2f} before,"
        f" {doc['machine']['after']['load_1m']:.2f} after; {doc['seconds']:.0f} s; JSON in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
