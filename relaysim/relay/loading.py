"""What a relay serves at start: a dataset's events, pinned in a fresh store.

``dataset`` is resolved as the CLI documents it:

* None -> an empty relay (it still accepts publishes);
* an existing file, or a name ending in ``.jsonl`` -> a JSONL export, every id and signature
  verified (an empty file is an empty relay); a bad line is a :class:`UsageError` naming it;
* otherwise a dataset name (``seed1``) or spec path -> built into the cache if needed
  (``ensure_built``) and read without re-verifying: relaysim signed it itself.

Only a named dataset has a cast (the authors' secret keys), so only it can drive live traffic.
The parsed events are kept (:attr:`Served.events`): ``POST /control/reset`` takes a fresh store
built from them (:class:`FreshStores`) instead of reading the file again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from relaysim.dataset import (
    DatasetSpec,
    ensure_built,
    load_spec,
    read_jsonl,
    sha256_file,
    spec_sha256,
    viewer_pubkey,
)
from relaysim.errors import UsageError
from relaysim.nostr.event import Event
from relaysim.store import EventStore
from relaysim.traffic import Rates, parse_rates

__all__ = [
    "FreshStores",
    "LoadedDataset",
    "Served",
    "build_store",
    "is_jsonl",
    "load_dataset",
    "load_served",
    "parse_traffic",
]

log = logging.getLogger("relaysim.relay")


@dataclass
class LoadedDataset:
    name: str | None
    path: Path | None
    events: list[Event] = field(default_factory=list)
    spec: DatasetSpec | None = None


@dataclass(frozen=True)
class Served:
    """The events a relay starts with (and goes back to on reset), and where they came from."""

    events: tuple[Event, ...]
    spec: DatasetSpec | None  # None for a JSONL file or no dataset: no cast, no traffic
    viewer: str | None  # the dataset's viewer account, served as /viewer.json
    relay_url: str | None  # where the dataset's relay hints point (None: the default URL)
    info: dict[str, Any]  # the "relay" part of /stats: dataset, path, sha256, counts, load time


def is_jsonl(dataset: str | Path) -> bool:
    """True when ``dataset`` names a JSONL export rather than a dataset name or spec."""
    path = Path(dataset)
    return path.suffix == ".jsonl" or (path.is_file() and path.suffix != ".toml")


def load_dataset(dataset: str | Path | None, *, relay_url: str | None = None) -> LoadedDataset:
    """Read (building if needed) the events of ``dataset``; see the module docstring."""
    if dataset is None:
        return LoadedDataset(None, None)
    if is_jsonl(dataset):
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


def build_store(events: Sequence[Event], capacity: int | None) -> EventStore:
    """A new store holding exactly ``events``, pinned (the dataset is never evicted)."""
    store = EventStore(capacity=capacity)
    store.load(events, pinned=True)
    return store


class FreshStores:
    """Stores that hold exactly ``events``, for resets: the first is built when asked for, the next
    one ahead of time.

    A relay reset once is reset again (a test session resets before every example), so after
    each :meth:`take` the caller calls :meth:`prepare` and the next store is built in a worker
    thread while the relay serves; the next :meth:`take` then costs nothing but the swap.
    Building seed1's store takes ~0.2 CPU-s; a spare costs ~6 MB.
    """

    def __init__(self, events: Sequence[Event], capacity: int | None) -> None:
        self._build = partial(build_store, events, capacity)
        self._spare: EventStore | None = None
        self._building: trio.Event | None = None

    async def take(self) -> EventStore:
        """A store that nobody else holds: the spare if there is one, else a new one (in a thread)."""
        if self._building is not None:
            await self._building.wait()
        store, self._spare = self._spare, None
        if store is None:
            store = await trio.to_thread.run_sync(self._build)
        return store

    def prepare(self, nursery: trio.Nursery) -> None:
        """Start building the next store in ``nursery``; a failure only costs the next take its speed."""
        done = self._building = trio.Event()

        async def build() -> None:
            try:
                # Abandoned on shutdown: the thread builds a store nobody else holds.
                self._spare = await trio.to_thread.run_sync(self._build, abandon_on_cancel=True)
            except Exception:
                log.exception("building the spare store failed; the next reset builds its own")
            finally:
                done.set()
                if self._building is done:
                    self._building = None

        nursery.start_soon(build)


def load_served(
    dataset: str | Path | None,
    extra: Sequence[Event],
    *,
    relay_url: str | None,
    capacity: int | None,
) -> tuple[Served, EventStore]:
    """Read ``dataset`` plus ``extra`` into a new store (slow for a big dataset: run it in a thread)."""
    t0 = time.perf_counter()
    loaded = load_dataset(dataset, relay_url=relay_url)
    events = (*loaded.events, *extra)
    store = EventStore(capacity=capacity)
    result = store.load(events, pinned=True)
    info = {
        "dataset": loaded.name,
        "path": str(loaded.path) if loaded.path else None,
        # What exactly was served, for reports: the JSONL file's hash (~20 ms for seed1).
        "sha256": sha256_file(loaded.path) if loaded.path else None,
        # The dataset's identity across relay URLs (the file's hash changes with the URL its hints name).
        "spec_sha256": spec_sha256(loaded.spec) if loaded.spec is not None else None,
        "events_read": len(events),
        "events_stored": len(store),
        "events_refused": result.refused,
        "load_seconds": round(time.perf_counter() - t0, 4),
    }
    viewer = viewer_pubkey(loaded.spec.seed_bytes) if loaded.spec is not None else None
    return Served(events, loaded.spec, viewer, relay_url, info), store


def parse_traffic(traffic: str | Rates | None) -> Rates:
    """``Rates`` from a spec string, a ``Rates``, or None (no scheduled traffic)."""
    if traffic is None:
        return Rates()
    if isinstance(traffic, str):
        return parse_rates(traffic)
    return traffic
