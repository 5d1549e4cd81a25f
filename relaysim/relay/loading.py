"""What a relay serves at start: a dataset's events, pinned in a fresh store.

``dataset`` is resolved as the CLI documents it:

* None -> an empty relay (it still accepts publishes);
* an existing file, or a name ending in ``.jsonl`` -> a JSONL export, every id and signature
  verified (an empty file is an empty relay); a bad line is a :class:`UsageError` naming it;
* otherwise a dataset name (``seed1``) or spec path -> built into the cache if needed
  (``ensure_built``) and read without re-verifying: relaysim signed it itself.

Only a named dataset has a cast (the authors' secret keys), so only it can drive live traffic.

Memory: the file is read a line at a time and each event goes into the store as soon as it is
parsed, so no list of parsed events ever exists (17k parsed events cost ~90 MB of RSS that the
allocator never gives back; the store keeps ~1 KB an event). ``POST /control/reset`` takes a
fresh store built from a :class:`~relaysim.store.StoreSnapshot` of the loaded one
(:class:`FreshStores`): it shares the stored records, so neither the file nor the events are read
again and a spare store costs only its indexes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import trio

from relaysim.dataset import (
    DEFAULT_RELAY_URL,
    DatasetSpec,
    ensure_built,
    load_spec,
    sha256_file,
    spec_sha256,
    viewer_pubkey,
)
from relaysim.dataset.jsonl import LineError, parse_line
from relaysim.errors import InvalidEvent, UsageError
from relaysim.nostr.event import Event
from relaysim.store import EventStore, StoreSnapshot
from relaysim.traffic import Rates, parse_rates

__all__ = [
    "FreshStores",
    "Served",
    "is_jsonl",
    "load_served",
    "parse_traffic",
    "read_events",
]

log = logging.getLogger("relaysim.relay")
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark some tools write


@dataclass(frozen=True)
class Served:
    """The events a relay starts with (and goes back to on reset), and where they came from."""

    snapshot: StoreSnapshot  # the loaded store's content: every reset starts from it
    spec: DatasetSpec | None  # None for a JSONL file or no dataset: no cast, no traffic
    viewer: str | None  # the dataset's viewer account, served as /viewer.json
    relay_url: str | None  # where the dataset's relay hints point (None: the default URL)
    info: dict[str, Any]  # the "relay" part of /stats: dataset, path, sha256, counts, load time


def is_jsonl(dataset: str | Path) -> bool:
    """True when ``dataset`` names a JSONL export rather than a dataset name or spec."""
    path = Path(dataset)
    return path.suffix == ".jsonl" or (path.is_file() and path.suffix != ".toml")


def read_events(path: Path, *, verify: bool, errors: list[LineError]) -> Iterator[Event]:
    """The good events of a JSONL file, one line at a time; each bad line is appended to ``errors``.

    The same reading rules as :func:`relaysim.dataset.read_jsonl` (blank lines skipped, a byte
    order mark ignored, lines numbered from 1), without holding the file or the events.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            line = raw.removeprefix(_BOM).strip() if line_no == 1 else raw.strip()
            if not line:
                continue
            try:
                yield parse_line(line, verify=verify)
            except InvalidEvent as exc:
                errors.append(LineError(line_no, exc.reason))


@dataclass
class _Source:
    name: str | None
    path: Path | None
    verify: bool = False
    spec: DatasetSpec | None = None
    errors: list[LineError] = field(default_factory=list)

    def events(self) -> Iterable[Event]:
        if self.path is None:
            return ()
        return read_events(self.path, verify=self.verify, errors=self.errors)

    def check(self) -> None:
        """After reading: a bad line of a user's file is a usage error naming it."""
        if not self.errors or self.path is None:
            return
        first = self.errors[0]
        if self.spec is not None:  # pragma: no cover - our own cache file
            raise UsageError(f"cached dataset {self.path} is damaged (line {first.line_no}); delete it")
        raise UsageError(f"{self.path}: {len(self.errors)} bad line(s); line {first.line_no}: {first.reason}")


def _source(dataset: str | Path | None, relay_url: str | None) -> _Source:
    if dataset is None:
        return _Source(None, None)
    if is_jsonl(dataset):
        path = Path(dataset)
        if not path.is_file():
            raise UsageError(f"dataset file {path} does not exist")
        return _Source(path.name, path, verify=True)
    spec = load_spec(dataset)
    return _Source(spec.name, ensure_built(spec, relay_url), spec=spec)


class FreshStores:
    """Stores that hold exactly what the relay loaded, for resets: the first is built when asked
    for, the next one ahead of time.

    A relay reset once is reset again (a test session resets before every example), so after
    each :meth:`take` the caller calls :meth:`prepare` and the next store is built in a worker
    thread while the relay serves; the next :meth:`take` then costs nothing but the swap.
    Building seed1's store from its snapshot takes ~0.1 CPU-s; a spare costs its indexes
    (~3 MB), the records are shared.
    """

    def __init__(self, snapshot: StoreSnapshot, capacity: int | None) -> None:
        self._build = partial(EventStore.from_snapshot, snapshot, capacity)
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
    source = _source(dataset, relay_url)
    store = EventStore(capacity=capacity)
    result = store.load(chain(source.events(), extra), pinned=True)
    source.check()
    info = {
        "dataset": source.name,
        "path": str(source.path) if source.path else None,
        # What exactly was served, for reports: the JSONL file's hash (~20 ms for seed1).
        "sha256": sha256_file(source.path) if source.path else None,
        # The dataset's identity across relay URLs (the file's hash changes with the URL its hints name).
        "spec_sha256": spec_sha256(source.spec) if source.spec is not None else None,
        # Where the dataset's relay hints, kind-10002 lists and media URLs point (a named dataset).
        "hints_url": (relay_url or DEFAULT_RELAY_URL) if source.spec is not None else None,
        "events_read": result.stored + result.duplicates + result.refused + result.ephemeral,
        "events_stored": len(store),
        "events_refused": result.refused,
        "load_seconds": round(time.perf_counter() - t0, 4),
    }
    viewer = viewer_pubkey(source.spec.seed_bytes) if source.spec is not None else None
    return Served(store.snapshot(), source.spec, viewer, relay_url, info), store


def parse_traffic(traffic: str | Rates | None) -> Rates:
    """``Rates`` from a spec string, a ``Rates``, or None (no scheduled traffic)."""
    if traffic is None:
        return Rates()
    if isinstance(traffic, str):
        return parse_rates(traffic)
    return traffic
