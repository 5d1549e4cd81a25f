"""``relaysim serve``: run the test relay until Ctrl-C or SIGTERM.

A thin shell over :func:`relaysim.relay.open_relay`: parse the arguments into a
:class:`~relaysim.relay.RelayConfig` (which checks them), enter the relay, print the URLs once it is
ready, wait for SIGINT/SIGTERM, leave (every websocket is closed with 1001).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from pathlib import Path

import trio

from relaysim.relay import DEFAULT_MAX_EVENTS, RelayConfig, open_relay

__all__ = ["register", "serve"]

DEFAULT_PORT = 7447


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "serve",
        help="run the test relay (and the app under test) on one port",
        description=(
            "Serve a dataset as a Nostr relay (websocket) and the web app under test (HTTP) on one "
            "port, with /stats, /metrics, /idle and loopback-only /control endpoints."
        ),
    )
    parser.add_argument(
        "--dataset",
        default="seed1",
        metavar="NAME|FILE",
        help="dataset name from datasets/ (built on first use) or a JSONL file; an empty file "
        "serves an empty relay (default: seed1)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="where browsers on other machines (Grid nodes) reach this relay, e.g. http://relay-host:7447/; "
        "the dataset's relay hints name it (default: the bound address)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--static", type=Path, metavar="DIR", help="serve this directory at / instead of the reference client"
    )
    parser.add_argument(
        "--test-headers",
        action="store_true",
        help="add COOP/COEP/CORP to every response (always on for the built-in reference client)",
    )
    parser.add_argument(
        "--traffic", metavar="RATES", help="live traffic rates, e.g. notes=2/s,reactions=10/s"
    )
    parser.add_argument(
        "--traffic-seed", default="1", metavar="SEED", help="seed of the traffic generator (default: 1)"
    )
    parser.add_argument("--traffic-paused", action="store_true", help="start with scheduled traffic paused")
    parser.add_argument(
        "--max-events",
        type=int,
        metavar="N",
        default=DEFAULT_MAX_EVENTS,
        help="cap the store: oldest events beyond the dataset are evicted (default %(default)s)",
    )
    parser.add_argument(
        "--faults",
        metavar="SPEC",
        help="inject network faults, e.g. drop=0.01,delay=50ms,jitter=20ms,disconnect-every=60s,"
        "refuse-reconnect=2[,reset=1] (docs/relay.md, Faults)",
    )
    parser.add_argument(
        "--faults-seed", default="1", metavar="SEED", help="seed of every fault draw (default: 1)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = RelayConfig(
        dataset=args.dataset,
        host=args.host,
        port=args.port,
        static=args.static,
        test_headers=True if args.test_headers else None,
        traffic=args.traffic,
        traffic_seed=args.traffic_seed,
        traffic_paused=args.traffic_paused,
        max_events=args.max_events,
        public_url=args.public_url,
        faults=args.faults,
        faults_seed=args.faults_seed,
        # Hints name this relay when its address is fixed; port 0 keeps the default build.
        hints_follow_url=args.port != 0,
    )
    if not _is_loopback(args.host):
        print(
            f"relaysim: warning: binding {args.host} exposes the relay, the app and /stats to the network "
            "(the /control endpoints still answer loopback peers only)",
            file=sys.stderr,
        )
    return trio.run(serve, config)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(config: RelayConfig) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_relay(config) as relay:
            info = relay.load_info
            faults = config.fault_spec.describe()
            print(f"relaysim: relay   {relay.url}", flush=True)
            print(f"relaysim: app     {relay.http_url}", flush=True)
            print(f"relaysim: stats   {relay.http_url}stats", flush=True)
            if config.public_url is not None:
                print(f"relaysim: public  {relay.public_http_url} (the app, for other machines)", flush=True)
            print(
                f"relaysim: ready in {relay.ready_seconds:.2f} s: {info.get('events_stored', 0)} events "
                f"from {info.get('dataset') or 'nothing (empty relay)'}"
                + (f", traffic {config.traffic}" if config.traffic else "")
                + (f", faults {faults} seed {config.faults_seed}" if faults else ""),
                flush=True,
            )
            async for signum in signals:
                print(
                    f"relaysim: {signal.Signals(signum).name}: closing connections",
                    file=sys.stderr,
                    flush=True,
                )
                break
    return 0
