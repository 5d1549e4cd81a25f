"""The scenario model: what a ``scenarios/*.toml`` file says, as frozen values.

A scenario is data (as in memlab and fuite: url, action, back), so the runner is one loop over
``scenario.steps`` with a ``match`` on the step class. Parsing, validation and the file:line error
messages live in :mod:`relaysim.scenario.parse`; this module only defines the values.

Every step class has ``KIND`` (the ``do = "..."`` name in the file) and ``line`` (the 1-based line
of its ``[[steps]]`` header, for messages; ignored when steps are compared).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from relaysim.analysis import Thresholds

__all__ = [
    "PAGES",
    "STEP_CLASSES",
    "STEP_KINDS",
    "Assert",
    "Back",
    "BrowserOptions",
    "CloseAll",
    "Feed",
    "MeasureIdle",
    "Notifications",
    "Open",
    "OpenProfile",
    "OpenThread",
    "Repeat",
    "SampleInterval",
    "Scenario",
    "Scroll",
    "Step",
    "Traffic",
    "Wait",
    "load_scenario",
]

PAGES: tuple[str, ...] = ("feed", "notifications", "profile", "thread")
"""Pages an ``open`` step may name (the reference client's ``switchPage`` names)."""


@dataclass(frozen=True, kw_only=True)
class Step:
    """Base of every step; ``line`` is where it was written (None when built in code)."""

    KIND: ClassVar[str] = ""
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class Open(Step):
    """Switch to ``page``; ``arg`` picks what a profile/thread page shows (index k in the list, or an id)."""

    KIND: ClassVar[str] = "open"
    page: str
    arg: int | str | None = None


@dataclass(frozen=True, kw_only=True)
class Scroll(Step):
    """Scroll to the bottom ``n`` times (each loads older notes), ``pause`` seconds after each."""

    KIND: ClassVar[str] = "scroll"
    n: int = 1
    pause: float = 0.5


@dataclass(frozen=True, kw_only=True)
class OpenThread(Step):
    """Open the thread of the k-th note shown on the current page (0 = first).

    Inside a ``repeat``, ``k_step`` adds ``k_step x iteration`` to ``k`` (iteration 0, 1, ... of the
    innermost repeat), so each pass can open a different note.
    """

    KIND: ClassVar[str] = "open_thread"
    k: int = 0
    k_step: int = 0


@dataclass(frozen=True, kw_only=True)
class OpenProfile(Step):
    """Open the profile of the k-th note's author, or with ``from_thread`` the open thread's root author.

    ``k_step`` as in :class:`OpenThread` (each pass of a repeat opens the next author).
    """

    KIND: ClassVar[str] = "open_profile"
    k: int = 0
    from_thread: bool = False
    k_step: int = 0


@dataclass(frozen=True, kw_only=True)
class Back(Step):
    """Go back ``n`` times (browser history / the app's back control)."""

    KIND: ClassVar[str] = "back"
    n: int = 1


@dataclass(frozen=True, kw_only=True)
class Notifications(Step):
    """Switch to the notifications page (same as ``open page="notifications"``)."""

    KIND: ClassVar[str] = "notifications"


@dataclass(frozen=True, kw_only=True)
class Feed(Step):
    """Switch to the feed page (same as ``open page="feed"``)."""

    KIND: ClassVar[str] = "feed"


@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    """Do nothing for ``seconds`` (sampling goes on)."""

    KIND: ClassVar[str] = "wait"
    seconds: float


@dataclass(frozen=True, kw_only=True)
class Traffic(Step):
    """Live traffic from the relay: ``mode`` "on" (at ``rates``, e.g. "notes=2/s"), "off", or "burst"
    (``n`` events of traffic kind ``kind`` at once)."""

    KIND: ClassVar[str] = "traffic"
    mode: str
    rates: str | None = None
    kind: str | None = None
    n: int | None = None


@dataclass(frozen=True, kw_only=True)
class CloseAll(Step):
    """Ask the app to CLOSE every subscription (``__moxie_close_all()``; the relay closes them if absent)."""

    KIND: ClassVar[str] = "close_all"


@dataclass(frozen=True, kw_only=True)
class MeasureIdle(Step):
    """The idle protocol: wait until the relay holds no subscription for the client and ``settle``
    seconds have passed since the last EOSE, then measure ``windows`` windows of ``window`` s each."""

    KIND: ClassVar[str] = "measure_idle"
    settle: float = 5.0
    window: float = 30.0
    windows: int = 1


@dataclass(frozen=True, kw_only=True)
class Assert(Step):
    """Judge these assertions now, on the evidence gathered so far (``names = "all"`` = every one)."""

    KIND: ClassVar[str] = "assert"
    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SampleInterval(Step):
    """Sample the probes every ``interval`` seconds from here on."""

    KIND: ClassVar[str] = "sample"
    interval: float


@dataclass(frozen=True, kw_only=True)
class Repeat(Step):
    """Run ``steps`` ``times`` times.

    With ``measure_cycles`` the runner reads the probes before the first pass and after each one,
    for the ``cycle_growth`` assertion: the first ``warmup`` passes fill caches and are not judged;
    bytes of the ``ignore_sites`` allocation sites (spent again by design in every pass, such as a
    copy of each websocket frame) are taken out of each pass's growth.
    """

    KIND: ClassVar[str] = "repeat"
    times: int
    steps: tuple[Step, ...]
    measure_cycles: bool = False
    warmup: int = 1
    ignore_sites: tuple[str, ...] = ()


STEP_CLASSES: Mapping[str, type[Step]] = {
    cls.KIND: cls
    for cls in (
        Open,
        Scroll,
        OpenThread,
        OpenProfile,
        Back,
        Notifications,
        Feed,
        Wait,
        Traffic,
        CloseAll,
        MeasureIdle,
        Assert,
        SampleInterval,
        Repeat,
    )
}
STEP_KINDS: tuple[str, ...] = tuple(sorted(STEP_CLASSES))
"""Every ``do = "..."`` value a step may have, sorted (as listed in error messages)."""


@dataclass(frozen=True)
class BrowserOptions:
    """The ``[browser]`` table; ``None`` = use the CLI's choice or the default. CLI flags win."""

    name: str | None = None
    headless: bool | None = None
    window_size: tuple[int, int] | None = None
    args: tuple[str, ...] = ()


def walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Every step in document order, repeats' bodies once each (the repeat step before its body)."""
    for step in steps:
        yield step
        if isinstance(step, Repeat):
            yield from walk(step.steps)


def at_iteration(step: Step, iteration: int) -> Step:
    """``step`` as it runs in pass ``iteration`` of its repeat: ``k`` advanced by ``k_step x iteration``."""
    if isinstance(step, OpenThread | OpenProfile) and step.k_step:
        return replace(step, k=step.k + step.k_step * iteration, k_step=0)
    return step


def expand(steps: tuple[Step, ...], iteration: int = 0) -> Iterator[Step]:
    """The steps as they run: repeats unrolled (``Repeat`` itself is not yielded), ``k_step`` applied."""
    for step in steps:
        if isinstance(step, Repeat):
            for i in range(step.times):
                yield from expand(step.steps, i)
        else:
            yield at_iteration(step, iteration)


def min_duration(steps: tuple[Step, ...]) -> float:
    """A lower bound on running time in seconds: waits, scroll pauses, idle settle + windows."""
    total = 0.0
    for step in expand(steps):
        match step:
            case Wait(seconds=s):
                total += s
            case Scroll(n=n, pause=p):
                total += n * p
            case MeasureIdle(settle=s, window=w, windows=k):
                total += s + w * k
    return total


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario file.

    ``app`` is "builtin", "builtin?leaks=..." or a URL / directory (the CLI's ``--app`` wins);
    ``dataset`` a dataset name or path; ``thresholds`` the defaults with ``threshold_overrides``
    applied; ``traffic`` the rates live traffic starts with (None = off until a traffic step);
    ``sample_interval`` seconds between samples until a ``sample`` step changes it; ``probe_calls``
    back-to-back calls used to measure the probe cost at the start; ``seed`` the traffic seed.
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    app: str = "builtin"
    dataset: str = "seed1"
    seed: int = 1
    traffic: str | None = None
    sample_interval: float = 1.0
    probe_calls: int = 10
    thresholds: Thresholds = field(default_factory=Thresholds)
    threshold_overrides: Mapping[str, float] = field(default_factory=dict)
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    path: str | None = None

    def walk(self) -> Iterator[Step]:
        """Every written step in document order (see :func:`walk`)."""
        return walk(self.steps)

    def expanded(self) -> Iterator[Step]:
        """The steps in the order they run, repeats unrolled."""
        return expand(self.steps)

    @property
    def min_duration_s(self) -> float:
        """Lower bound on running time (waits, scroll pauses, idle protocol), in seconds."""
        return min_duration(self.steps)

    @property
    def measured_repeat(self) -> Repeat | None:
        """The repeat marked ``measure_cycles`` (at most one per scenario), if any."""
        return next((s for s in self.walk() if isinstance(s, Repeat) and s.measure_cycles), None)

    @property
    def assertions(self) -> tuple[str, ...]:
        """Every assertion some ``assert`` step names, in first-mention order."""
        seen: dict[str, None] = {}
        for step in self.walk():
            if isinstance(step, Assert):
                seen.update(dict.fromkeys(step.names))
        return tuple(seen)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; see :func:`relaysim.scenario.parse.load_scenario`."""
    from relaysim.scenario.parse import load_scenario as _load

    return _load(path)
