"""Live traffic for the test relay: a pure, seeded event generator and a thin trio loop.

``parse_rates`` reads ``--traffic notes=2/s,reactions=10/s``; :class:`TrafficGenerator` makes
signed events from the dataset's cast on an exact schedule; :func:`run_traffic` publishes them
through the relay, steered by a :class:`TrafficControl` (pause, resume, burst, statistics).
"""

from relaysim.traffic.driver import MAX_PENDING_BURSTS, TrafficControl, TrafficStatistics, run_traffic
from relaysim.traffic.generator import Emission, TrafficCast, TrafficGenerator
from relaysim.traffic.rates import KIND_NAMES, NOSTR_KINDS, Rates, parse_rates

__all__ = [
    "KIND_NAMES",
    "MAX_PENDING_BURSTS",
    "NOSTR_KINDS",
    "Emission",
    "Rates",
    "TrafficCast",
    "TrafficControl",
    "TrafficGenerator",
    "TrafficStatistics",
    "parse_rates",
    "run_traffic",
]
