"""relaysim side by side with peer relays, under a load generator measured first against nothing.

Run: ``python3 bench/peers.py [--quick] [--out peers.json] [--only relaysim,localrelay] [--scratch DIR]
[--python-generator]``

It installs the peers into a scratch folder (``~/.cache/relaysim-bench``: a venv for PyPI
``nostr-sdk`` and ``nostr-relay``, ``npm install`` for ``@nostr-relay/*``), then for each target --
the do-nothing endpoint first (its figures are the generator's ceiling), relaysim, rust-nostr's
LocalRelay, the TypeScript ``@nostr-relay/core``, PyPI ``nostr-relay`` -- starts it fresh on
127.0.0.1 with seed1, publishes the same 20,000 signed notes, and measures the rows of issue 14.
Each target is stopped before the next starts, and every row is bounded in time. It prints one
table and writes every figure, each answer check and the machine's load to ``--out``.

The load generator's hot loops (the fan-out receivers, the large-REQ reader) and the do-nothing
endpoint are ``peerbench/fastload.c``, compiled with ``cc -O2`` into the scratch folder on first
use; without a C compiler (or with ``--python-generator``) the bench runs their Python versions,
says so, and records which generator ran in the JSON (``generator``).

The figures are for one machine at one moment: run it under ``flock /tmp/chromium.lock`` so a
browser run does not share the CPU, and read the ratios rather than the absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from peerbench import check, fastload, rows
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


class Stalled(Exception):
    """The relay stopped answering during a row: the rows after it would only time out."""


def _row(out: dict[str, Any], name: str, fn: Any, port: int) -> Any:
    """Run one row; a row that fails (the relay dropped the connections, timed out) is recorded."""
    try:
        return fn()
    except Exception as exc:  # a peer failing one row must not end the bench
        out.setdefault("row_errors", {})[name] = f"{type(exc).__name__}: {exc}"
        if not rows.alive(port):
            out["stalled_after"] = name
            raise Stalled(name) from exc
        return None


def measure(
    running: Running,
    work: Any,
    expected: dict[str, Any],
    quick: bool,
    *,
    publish: bool = True,
    fast: Path | None = None,
) -> dict[str, Any]:
    """Every row against one running target; a target that stops answering ends its rows early.

    ``fast``: the compiled generator (fastload) for the fan-out and large-REQ rows, or None.
    """
    out: dict[str, Any] = {"notes": list(running.notes), "ready_s": running.ready_s}
    out["rss_loaded_mb"] = running.rss() / 2**20
    with contextlib.suppress(Stalled):
        _measure(running, work, expected, quick, out, publish, fast)
    out["rss_end_mb"] = running.rss() / 2**20
    return out


def _measure(
    running: Running,
    work: Any,
    expected: dict[str, Any],
    quick: bool,
    out: dict[str, Any],
    publish: bool,
    fast: Path | None,
) -> None:
    port = running.port

    def row(name: str, fn: Any) -> Any:
        return _row(out, name, fn, port)

    if publish:
        pub = row("publish", lambda: rows.publish(port, work.publish, deadline=60 if quick else 120))
        if pub is not None:
            out["publish_per_s"] = pub["per_s"] if pub["complete"] else None
            out["publish"] = {k: v for k, v in pub.items() if k != "payloads"}
            out["publish_check"] = check.check_publish(pub["payloads"], len(work.publish))
            if not pub["complete"] and not rows.alive(port):
                out["stalled_after"] = "publish"
                raise Stalled("publish")
        found = row("queryable", lambda: rows.queryable(port, [ev.id for ev in work.publish[-20:]]))
        out["queryable_ms"] = None if found is None else 1000 * found
    lat = row(
        "req_latency",
        lambda: rows.req_latency(port, work.mix, rounds=300 if quick else 1500, deadline=30 if quick else 60),
    )
    if lat is not None:
        out["req_p50_ms"], out["req_p99_ms"] = lat["p50_ms"], lat["p99_ms"]
        out["req_queries"], out["req_stopped"] = lat["queries"], lat["stopped"]
        out["req_check"] = check.check_queries(lat["answers"], expected["mix"], work.mix)
    conc = row("concurrent", lambda: rows.concurrent_queries(port, work.mix, seconds=3 if quick else 8))
    if conc is not None:
        out["queries_per_s"], out["streamed_per_s"] = conc["queries_per_s"], conc["events_per_s"]
    big = row(
        "big_req", lambda: rows.big_req(port, work.big, rounds=3 if quick else 7, deadline=30, fast=fast)
    )
    if big is not None:
        out["big_req_per_s"] = big["per_s"]
        out["big_req_check"] = check.check_queries([big["answer"]], [expected["big"]], [work.big])
    n_lat = 5 if quick else 11
    fan = row(
        "fanout",
        lambda: rows.fanout(
            port,
            work.fanout[:n_lat],
            work.fanout[n_lat:],
            tag=FANOUT_TAG,
            rss=running.rss,
            deadline=60,
            fast=fast,
        ),
    )
    if fan is not None:
        out["fanout_last_ms"] = fan["last_delivery_ms"]
        out["fanout_per_s"] = fan["sustained_deliveries_per_s"]
        out["rss_per_conn_kb"] = fan["rss_per_idle_connection_kb"]
        out["fanout"] = {k: v for k, v in fan.items() if k not in ("deliveries", "sample")}
        fan_ids = [ev.id for ev in work.fanout]
        out["fanout_check"] = check.check_fanout(fan["deliveries"], fan["sample"], fan_ids)


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
        req, big, fan = r.get("req_check"), r.get("big_req_check"), r.get("fanout_check")
        parts = [
            f"{req['exact']}/{req['queries']}" if req else "-",
            f"{big['exact']}/1" if big else "-",
            ("ok" if fan["all_complete"] else f"{fan['short']} short") if fan else "-",
        ]
        checks.append(", ".join(parts))
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
    parser.add_argument(
        "--python-generator",
        action="store_true",
        help="use the Python load generator and endpoint even when a C compiler is there",
    )
    args = parser.parse_args(argv)
    targets = [t for t in args.only.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    started = time.time()
    if args.python_generator:
        generator = fastload.Generator(None, "Python (--python-generator)")
    else:
        generator = fastload.build(args.scratch)
    if not generator.compiled:
        print(
            f"bench/peers: the load generator is the slower Python one: {generator.description}",
            file=sys.stderr,
        )
    fast = generator.binary
    work = build_workload(
        args.scratch, f"ws://127.0.0.1:{args.relaysim_port}/", publish=20_000, fanout=31, big_limit=5_000
    )
    now = time.time()
    expected_all = reference_answers(work.seed + work.publish, [*work.mix, work.big], now)
    expected = {"mix": expected_all[:-1], "big": expected_all[-1]}
    seed_only = reference_answers(work.seed, [*work.mix, work.big], now)
    expected_seed = {"mix": seed_only[:-1], "big": seed_only[-1]}
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
                name, port, work.seed_path, args.scratch, load_over_ws=load_over_ws, canned=canned, fast=fast
            )
            results[name] = measure(running, work, expected, args.quick, fast=fast)
            if results[name].get("stalled_after") == "publish":
                # Measure the read rows on a fresh start (seed1 only) rather than not at all.
                running.stop()
                print(f"bench/peers: {name} stopped answering while publishing; restarted", file=sys.stderr)
                running = start(
                    name,
                    free_port(),
                    work.seed_path,
                    args.scratch,
                    load_over_ws=load_over_ws,
                    canned=canned,
                    fast=fast,
                )
                again = measure(running, work, expected_seed, args.quick, publish=False, fast=fast)
                again["notes"].append(
                    "stopped answering under the publish row; read rows after a restart, seed1 only"
                )
                kept = {k: v for k, v in results[name].items() if k.startswith("publish")}
                results[name] = {**again, **kept, "stalled_after": "publish"}
            args.out.write_text(json.dumps({"partial": True, "results": results}, indent=1, default=str))
        except Exception as exc:  # one peer failing must not end the bench
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
        "generator": generator.description,
        "versions": describe_versions(args.scratch),
        "rows": [{"key": k, "label": label, "higher_is_better": h} for k, label, h in ROWS],
        "results": results,
    }
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print_table(results)
    print(f"\nload generator and do-nothing endpoint: {generator.description}")
    print(
        f"machine: {load_before['cores']} cores, load {load_before['load_1m']:.2f} before,"
        f" {doc['machine']['after']['load_1m']:.2f} after; {doc['seconds']:.0f} s; JSON in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
