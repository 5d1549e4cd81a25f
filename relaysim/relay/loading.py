"""What a relay serves at start: a dataset's events, and the traffic generator that fits them.

``dataset`` is resolved as the CLI documents it:

* None -> an empty relay (it still accepts publishes);
* an existing file, or a name ending in ``.jsonl`` -> a JSONL export, every id and signature
  verified (an empty file is an empty relay); a bad line is a :class:`UsageError` naming it;
* otherwise a dataset name (``seed1``) or spec path -> built into the cache if needed
  (``ensure_built``) and read without re-verifying: relaysim signed it itself.

Only a named dataset has a cast (the authors' secret keys), so only it can drive live traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.traffic import TrafficControl

__all__ = ["LoadedDataset", "OnDemandTrafficControl", "load_dataset", "make_generator", "parse_traffic"]


@dataclass
class LoadedDataset:
    name: str | None
    path: Path | None
    events: list[Event] = field(default_factory=list)
    spec: Any = None


def _is_jsonl(dataset: str | Path) -> bool:
    path = Path(dataset)
    return path.suffix == ".jsonl" or (path.is_file() and path.suffix != ".toml")


def load_dataset(dataset: str | Path | None, *, relay_url: str | None = None) -> LoadedDataset:
    """Read (building if needed) the events of ``dataset``; see the module docstring."""
    from relaysim.dataset import ensure_built, load_spec, read_jsonl

    if dataset is None:
        return LoadedDataset(None, None)
    if _is_jsonl(dataset):
        path = Path(dataset)
        if not path.is_file():
            raise UsageError(f"dataset file {path} does not exist")
        result = read_jsonl(path, verify=True)
        if result.errors:
            first = result.errors[0]
            raise UsageError(
                f"{path}: {len(result.errors)} bad line(s); line {first.line_no}: {first.reason}"
            )
        return LoadedDataset(path.name, path, result.events)
    spec = load_spec(dataset)
    path = ensure_built(spec, relay_url)
    result = read_jsonl(path, verify=False)
    if result.errors:  # pragma: no cover - our own cache file
        raise UsageError(f"cached dataset {path} is damaged (line {result.errors[0].line_no}); delete it")
    return LoadedDataset(spec.name, path, result.events, spec)


def make_generator(
    spec: Any,
    traffic: Any,
    *,
    seed: int | str,
    relay_url: str | None,
    start_time: float | None = None,
) -> Any:
    """A ``TrafficGenerator`` signing as ``spec``'s cast (slow: it rebuilds the cast).

    ``traffic`` is a rates spec string, a ``Rates`` or None (no scheduled traffic: bursts from
    the control endpoint still work).
    """
    import time

    from relaysim.dataset import cast_for
    from relaysim.traffic import TrafficGenerator

    cast = cast_for(spec, relay_url)
    start = start_time if start_time is not None else time.time()
    return TrafficGenerator(cast, seed, parse_traffic(traffic), start)


def parse_traffic(traffic: Any) -> Any:
    """``Rates`` from a spec string, a ``Rates``, or None (no scheduled traffic)."""
    from relaysim.traffic import Rates, parse_rates

    if traffic is None:
        return Rates()
    if isinstance(traffic, str):
        return parse_rates(traffic)
    return traffic


class OnDemandTrafficControl(TrafficControl):
    """A ``TrafficControl`` that also says when someone first wants traffic.

    ``wanted`` (a ``trio.Event``; the methods run on the relay's trio thread) is set by
    :meth:`burst` and :meth:`resume`: that is when the relay builds the generator if no rates
    were given at start.
    """

    def __init__(self, *, paused: bool, wanted: Any) -> None:
        super().__init__(paused=paused)
        self._wanted = wanted

    def burst(self, kind_name: str, n: int) -> None:
        super().burst(kind_name, n)
        self._wanted.set()

    def resume(self) -> None:
        super().resume()
        self._wanted.set()
