"""The step types of a scenario file, each declared once: its arguments, checks, capabilities and how it runs.

Browsing steps (``BROWSING = True``) act in the app through its adapter; the others are the
harness's own (waiting, sampling, traffic, the idle protocol, judging). ``run`` talks only to the
:class:`~relaysim.scenario._step.StepContext` protocol, so this module stays free of browsers and
relays. See :mod:`relaysim.scenario._step` for what a declaration holds, and docs/scenarios.md for
the table generated from these classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import ClassVar
from urllib.parse import urlsplit

from relaysim.scenario._args import (
    AssertionNames,
    Choice,
    FaultsText,
    Flag,
    FloatRange,
    IntRange,
    PageArg,
    Rates,
    SiteNames,
    StepList,
    Text,
    TrafficKind,
)
from relaysim.scenario._step import BadStep, PageView, Step, StepContext, arg, step_type
from relaysim.scenario.adapters import Action as PageAction

__all__ = [
    "PAGES",
    "TRAFFIC_MODES",
    "Action",
    "Assert",
    "Back",
    "Click",
    "CloseAll",
    "CycleMark",
    "Feed",
    "Js",
    "MeasureIdle",
    "Navigate",
    "Notifications",
    "Open",
    "OpenProfile",
    "OpenThread",
    "Repeat",
    "SampleInterval",
    "Scroll",
    "SetFaults",
    "Traffic",
    "Type",
    "Wait",
    "expand",
]

PAGES: tuple[str, ...] = ("feed", "notifications", "profile", "thread")
"""Pages an ``open`` step may name (the reference client's ``switchPage`` names)."""

TRAFFIC_MODES: tuple[str, ...] = ("on", "off", "burst")


@dataclass(frozen=True)
class CycleMark:
    """A boundary of a ``measure_cycles`` repeat in the run order: ``cycle-start`` or ``cycle-end``."""

    phase: str


def expand(steps: tuple[Step, ...], iteration: int = 0) -> Iterator[Step | CycleMark]:
    """The steps as they run: repeats unrolled (with :class:`CycleMark` at a measured repeat's
    boundaries), each step as it runs in its pass (``k_step`` applied). The runner walks exactly this."""
    for s in steps:
        if isinstance(s, Repeat):
            yield from s.unroll()
        else:
            yield s.at_iteration(iteration)


def _k_step_needs_repeat(kind: str, given: frozenset[str], nested: bool) -> None:
    if "k_step" in given and not nested:
        raise BadStep(f"{kind}.k_step needs an enclosing repeat (it advances k on each pass)", "k_step")


# -- browsing ----------------------------------------------------------------------------------------


@step_type
@dataclass(frozen=True, kw_only=True)
class Open(Step):
    """Switch to ``page``; ``arg`` picks what a profile/thread page shows (index k in the list, or an id)."""

    KIND: ClassVar[str] = "open"
    BROWSING: ClassVar[bool] = True
    page: str = arg(Choice(PAGES), doc="the page to show")
    # last: the field named `arg` hides the function arg() for the rest of the class body
    arg: int | str | None = arg(PageArg(), None, "index k in the list, or an id", generate=False)

    def provides(self) -> frozenset[str]:
        return frozenset({"thread"}) if self.page == "thread" else frozenset()

    def possible(self, view: PageView) -> bool:
        return view.notes > 0 if self.page == "thread" else True

    def run(self, ctx: StepContext) -> str | None:
        if self.page == "thread":
            ctx.open_thread(0 if self.arg is None else self.arg)
        elif self.page == "profile":
            # no argument: the viewer's own profile (the nav button) when the adapter has it
            if self.arg is None and ctx.supports("profile"):
                ctx.act("profile")
            else:
                ctx.act("open_profile", 0 if self.arg is None else self.arg)
            ctx.arrived("profile")
        else:
            ctx.act(self.page)
            ctx.arrived(self.page)
        ctx.sample(self.KIND)
        return None


@dataclass(frozen=True, kw_only=True)
class _SwitchPage(Step):
    """A nav-bar page switch (not registered itself): the adapter action is the page's name."""

    PAGE: ClassVar[str] = ""
    BROWSING: ClassVar[bool] = True

    def run(self, ctx: StepContext) -> str | None:
        ctx.act(self.PAGE)
        ctx.arrived(self.PAGE)
        ctx.sample(self.KIND)
        return None


@step_type
@dataclass(frozen=True, kw_only=True)
class Feed(_SwitchPage):
    """Switch to the feed page (same as ``open page="feed"``)."""

    KIND: ClassVar[str] = "feed"
    PAGE: ClassVar[str] = "feed"


@step_type
@dataclass(frozen=True, kw_only=True)
class Notifications(_SwitchPage):
    """Switch to the notifications page (same as ``open page="notifications"``)."""

    KIND: ClassVar[str] = "notifications"
    PAGE: ClassVar[str] = "notifications"


@step_type
@dataclass(frozen=True, kw_only=True)
class Scroll(Step):
    """Scroll to the bottom ``n`` times (each loads older notes), ``pause`` seconds after each."""

    KIND: ClassVar[str] = "scroll"
    BROWSING: ClassVar[bool] = True
    n: int = arg(IntRange(1, 1000), 1, "times to scroll", explore=IntRange(1, 3))
    # explore scrolls without pausing (each scroll already waits for its notes): a one-value range
    pause: float = arg(FloatRange(0), 0.5, "seconds to wait after each scroll", explore=FloatRange(0, hi=0))

    def possible(self, view: PageView) -> bool:
        return view.more

    def run(self, ctx: StepContext) -> str | None:
        for _ in range(self.n):
            ctx.act("scroll")
            ctx.run_for(self.pause, "scroll")
        return None

    def estimated_seconds(self) -> float:
        return self.n * self.pause


@step_type
@dataclass(frozen=True, kw_only=True)
class OpenThread(Step):
    """Open the thread of the k-th note shown on the current page (0 = first).

    Inside a ``repeat``, ``k_step`` adds ``k_step x iteration`` to ``k`` (iteration 0, 1, ... of the
    innermost repeat), so each pass can open a different note.
    """

    KIND: ClassVar[str] = "open_thread"
    BROWSING: ClassVar[bool] = True
    PROVIDES: ClassVar[frozenset[str]] = frozenset({"thread"})
    k: int = arg(IntRange(0), 0, "which note (0 = first shown)", explore=IntRange(0, 49))
    k_step: int = arg(
        IntRange(0, 1000), 0, "added to k on each pass of the enclosing repeat", explore=IntRange(0, 3)
    )

    def validate(self, given: frozenset[str], nested: bool) -> None:
        _k_step_needs_repeat(self.KIND, given, nested)

    def possible(self, view: PageView) -> bool:
        return view.notes > 0

    def at_iteration(self, iteration: int) -> Step:
        return replace(self, k=self.k + self.k_step * iteration, k_step=0) if self.k_step else self

    def run(self, ctx: StepContext) -> str | None:
        ctx.open_thread(self.k)
        ctx.sample(self.KIND)
        return None


@step_type
@dataclass(frozen=True, kw_only=True)
class OpenProfile(Step):
    """Open the profile of the k-th note's author, or with ``from_thread`` the open thread's root author.

    ``k_step`` as in :class:`OpenThread` (each pass of a repeat opens the next author).
    """

    KIND: ClassVar[str] = "open_profile"
    BROWSING: ClassVar[bool] = True
    k: int = arg(IntRange(0), 0, "whose note (0 = first shown)", explore=IntRange(0, 49))
    from_thread: bool = arg(Flag(), False, "the open thread's root author instead")
    k_step: int = arg(
        IntRange(0, 1000), 0, "added to k on each pass of the enclosing repeat", explore=IntRange(0, 3)
    )

    def validate(self, given: frozenset[str], nested: bool) -> None:
        _k_step_needs_repeat(self.KIND, given, nested)
        if self.from_thread and "k" in given:
            raise BadStep("open_profile takes either 'k' or 'from_thread = true', not both")
        if self.from_thread and "k_step" in given:
            raise BadStep("open_profile.k_step needs 'k', not 'from_thread = true'", "k_step")

    def possible(self, view: PageView) -> bool:
        return view.authors > 0 and (view.page == "thread" or not self.from_thread)

    def at_iteration(self, iteration: int) -> Step:
        return replace(self, k=self.k + self.k_step * iteration, k_step=0) if self.k_step else self

    def run(self, ctx: StepContext) -> str | None:
        ctx.act("open_profile_from_thread" if self.from_thread else "open_profile", self.k)
        ctx.arrived("profile")
        ctx.sample(self.KIND)
        return None


@step_type
@dataclass(frozen=True, kw_only=True)
class Back(Step):
    """Go back ``n`` times (browser history / the app's back control)."""

    KIND: ClassVar[str] = "back"
    BROWSING: ClassVar[bool] = True
    n: int = arg(IntRange(1, 100), 1, "times to go back", explore=IntRange(1, 2))

    def possible(self, view: PageView) -> bool:
        return view.history >= self.n

    def run(self, ctx: StepContext) -> str | None:
        pages = []
        for _ in range(self.n):  # one at a time: each page passed through is seen (a thread, say)
            ctx.act("back")
            ctx.sample("back")
            pages.append(ctx.current_page())
            ctx.arrived(pages[-1])
        return "back to " + " -> ".join(pages)


@step_type
@dataclass(frozen=True, kw_only=True)
class Action(Step):
    """Perform any action the app's adapter defines, by name (``like``, ``open_settings`` ...).

    For an app's own controls that no other step names; ``page`` says where the action leaves the app
    (so leaving a thread is observed), ``arg`` is passed to the action as ``arguments[0]``. Not
    generated by explore: only the adapter knows its action names.
    """

    KIND: ClassVar[str] = "action"
    name: str = arg(Text(), doc="the adapter action to perform")
    page: str | None = arg(Choice(PAGES), None, "the page the action leads to, when it navigates")
    # last: the field named `arg` hides the function arg() for the rest of the class body
    arg: int | str | None = arg(PageArg(), None, "passed to the action")

    def run(self, ctx: StepContext) -> str | None:
        ctx.act(self.name, self.arg)
        if self.page is not None:
            ctx.arrived(self.page)
        ctx.sample(self.KIND)
        return f"action {self.name}"


# -- a plain page, no adapter ------------------------------------------------------------------------
#
# click, type, navigate and js act on the page directly (CSS selectors, URLs, scripts written in the
# scenario file), so a page relaysim knows nothing about needs no adapter. Each builds an adapter
# action on the spot (relaysim.scenario.adapters.Action) and samples afterwards. Explore does not
# generate them: only the file's author knows the page's selectors.

_WAIT_FOR_DOC = "a CSS selector that must appear afterwards"
_TIMEOUT_DOC = "seconds to find the element and for wait_for / wait_js"


def _page_action(step: Step, **how: object) -> PageAction:
    where = f"{step.KIND} (line {step.line})" if step.line else step.KIND
    return PageAction(name=where, **how)  # type: ignore[arg-type]


@step_type
@dataclass(frozen=True, kw_only=True)
class Click(Step):
    """Click the element ``selector`` finds (the ``index``-th match, scrolled into view first), for a
    page with no adapter; with ``wait_for``, wait until that selector appears."""

    KIND: ClassVar[str] = "click"
    selector: str = arg(Text(), doc="CSS selector of the element")
    index: int = arg(IntRange(0), 0, "which match (0 = first)")
    wait_for: str | None = arg(Text(), None, _WAIT_FOR_DOC)
    timeout: float = arg(FloatRange(0, strict=True), 15.0, _TIMEOUT_DOC)

    def run(self, ctx: StepContext) -> str | None:
        ctx.perform(
            _page_action(
                self, click=self.selector, index=str(self.index), wait_for=self.wait_for, timeout=self.timeout
            )
        )
        ctx.sample(self.KIND)
        return f"clicked {self.selector!r}" + (f" #{self.index}" if self.index else "")


@step_type
@dataclass(frozen=True, kw_only=True)
class Type(Step):
    """Type ``text`` into the element ``selector`` finds (clicked first, as a person focuses a field),
    key by key; ``submit`` presses Enter afterwards."""

    KIND: ClassVar[str] = "type"
    selector: str = arg(Text(), doc="CSS selector of the field")
    text: str = arg(Text(nonempty=False), doc="what to type")
    submit: bool = arg(Flag(), False, "press Enter afterwards")
    index: int = arg(IntRange(0), 0, "which match (0 = first)")
    wait_for: str | None = arg(Text(), None, _WAIT_FOR_DOC)
    timeout: float = arg(FloatRange(0, strict=True), 15.0, _TIMEOUT_DOC)

    def run(self, ctx: StepContext) -> str | None:
        ctx.perform(
            _page_action(
                self,
                click=self.selector,
                index=str(self.index),
                type=self.text,
                submit=self.submit,
                wait_for=self.wait_for,
                timeout=self.timeout,
            )
        )
        ctx.sample(self.KIND)
        return f"typed {len(self.text)} characters into {self.selector!r}"


@step_type
@dataclass(frozen=True, kw_only=True)
class Navigate(Step):
    """Go to ``to``: a ``#hash`` changes the location's hash in place (a single-page app's router, no
    reload); a URL, absolute or relative to the page shown, loads a new document and waits until the
    app is ready again."""

    KIND: ClassVar[str] = "navigate"
    to: str = arg(Text(), doc="a URL (http(s), or relative) or a #hash")
    wait_for: str | None = arg(Text(), None, _WAIT_FOR_DOC)
    timeout: float = arg(FloatRange(0, strict=True), 15.0, "seconds for wait_for")

    def validate(self, given: frozenset[str], nested: bool) -> None:
        scheme = urlsplit(self.to.strip()).scheme
        if scheme not in ("", "http", "https"):
            raise BadStep(
                f"navigate.to must be an http(s) URL, a relative URL or a #hash, got {self.to!r}", "to"
            )

    def run(self, ctx: StepContext) -> str | None:
        detail = ctx.navigate(self.to.strip())
        if self.wait_for:
            ctx.perform(_page_action(self, wait_for=self.wait_for, timeout=self.timeout))
        ctx.sample(self.KIND)
        return detail


@step_type
@dataclass(frozen=True, kw_only=True)
class Js(Step):
    """Run ``script`` in the page (WebDriver ``execute_script``: it may ``return`` a value or a Promise,
    which is awaited); with ``wait_js``, poll that script until it returns something truthy."""

    KIND: ClassVar[str] = "js"
    script: str = arg(Text(), doc="JavaScript run in the page")
    wait_js: str | None = arg(Text(), None, "a script polled until it returns something truthy")
    wait_for: str | None = arg(Text(), None, _WAIT_FOR_DOC)
    timeout: float = arg(FloatRange(0, strict=True), 15.0, "seconds for wait_for / wait_js")

    def run(self, ctx: StepContext) -> str | None:
        value = ctx.perform(
            _page_action(
                self, js=self.script, wait_js=self.wait_js, wait_for=self.wait_for, timeout=self.timeout
            )
        )
        ctx.sample(self.KIND)
        if value is None:
            return None
        shown = repr(value)
        return "returned " + (shown if len(shown) <= 80 else shown[:77] + "...")


# -- the harness's own -------------------------------------------------------------------------------


@step_type
@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    """Do nothing for ``seconds`` (sampling goes on)."""

    KIND: ClassVar[str] = "wait"
    seconds: float = arg(FloatRange(0, strict=True), doc="how long", explore=FloatRange(0.5, hi=3.0))

    def run(self, ctx: StepContext) -> str | None:
        ctx.run_for(self.seconds, "wait")
        return None

    def estimated_seconds(self) -> float:
        return self.seconds


@step_type
@dataclass(frozen=True, kw_only=True)
class Traffic(Step):
    """Live traffic from the relay: ``mode`` "on" (at ``rates``, e.g. "notes=2/s"), "off", or "burst"
    (``n`` events of traffic kind ``kind`` at once)."""

    KIND: ClassVar[str] = "traffic"
    mode: str = arg(Choice(TRAFFIC_MODES), doc="on, off or burst")
    rates: str | None = arg(Rates(), None, "with on: the mix (one per run)", generate=False)
    kind: str | None = arg(TrafficKind(), None, "with burst: which kind of event")
    n: int | None = arg(IntRange(1, 10_000), None, "with burst: how many", explore=IntRange(1, 20))

    _ALLOWED: ClassVar[dict[str, frozenset[str]]] = {
        "on": frozenset({"rates"}),
        "off": frozenset(),
        "burst": frozenset({"kind", "n"}),
    }

    def validate(self, given: frozenset[str], nested: bool) -> None:
        allowed = self._ALLOWED[self.mode]
        for key in ("rates", "kind", "n"):
            if key in given and key not in allowed:
                raise BadStep(f"traffic mode '{self.mode}' takes no {key!r}", key)
        for key in sorted(allowed - {"rates"}):  # `on` may reuse the mix given before (checked in order)
            if key not in given:
                raise BadStep(f"traffic mode '{self.mode}' needs {key!r}")

    def run(self, ctx: StepContext) -> str | None:
        return ctx.traffic(self.mode, self.kind, self.n)


@step_type
@dataclass(frozen=True, kw_only=True)
class SetFaults(Step):
    """Switch the relay's injected network faults from here on (``spec`` as ``--faults``; "off": none).

    Live connections follow at once: a disconnect timer draws again under the new spec, so "off"
    before the idle protocol leaves the client's connection alone. The draws stay those of the run's
    faults seed (the ``[faults]`` table's ``seed``, else ``seed``). Not generated by explore.
    """

    KIND: ClassVar[str] = "faults"
    spec: str = arg(FaultsText(), doc='e.g. "disconnect-every=3s,delay=50ms", or "off"', generate=False)

    def run(self, ctx: StepContext) -> str | None:
        return ctx.faults(self.spec)


@step_type
@dataclass(frozen=True, kw_only=True)
class CloseAll(Step):
    """Ask the app to CLOSE every subscription (``__moxie_close_all()``; the relay closes them if absent)."""

    KIND: ClassVar[str] = "close_all"

    def run(self, ctx: StepContext) -> str | None:
        return ctx.close_all()


@step_type
@dataclass(frozen=True, kw_only=True)
class MeasureIdle(Step):
    """The idle protocol: wait until the relay holds no subscription for the client and ``settle``
    seconds have passed since the last EOSE, then measure ``windows`` windows of ``window`` s each."""

    KIND: ClassVar[str] = "measure_idle"
    PROVIDES: ClassVar[frozenset[str]] = frozenset({"idle"})
    settle: float = arg(FloatRange(0), 5.0, "seconds since the last EOSE before measuring")
    window: float = arg(FloatRange(0, strict=True), 30.0, "seconds per window")
    windows: int = arg(IntRange(1, 10), 1, "windows measured; the weakest is judged")

    def run(self, ctx: StepContext) -> str | None:
        return ctx.measure_idle(self.settle, self.window, self.windows)

    def estimated_seconds(self) -> float:
        return self.settle + self.window * self.windows


@step_type
@dataclass(frozen=True, kw_only=True)
class Assert(Step):
    """Judge these assertions now, on the evidence gathered so far (``names = "all"`` = every one)."""

    KIND: ClassVar[str] = "assert"
    names: tuple[str, ...] = arg(AssertionNames(), doc='"all" or a list of assertion names')

    def run(self, ctx: StepContext) -> str | None:
        return ctx.judge(tuple(self.names), f"step {self.line}")


@step_type
@dataclass(frozen=True, kw_only=True)
class SampleInterval(Step):
    """Sample the probes every ``interval`` seconds from here on."""

    KIND: ClassVar[str] = "sample"
    interval: float = arg(FloatRange(0, strict=True), doc="seconds between samples")

    def run(self, ctx: StepContext) -> str | None:
        ctx.set_interval(self.interval)
        return None


@step_type
@dataclass(frozen=True, kw_only=True)
class Repeat(Step):
    """Run ``steps`` ``times`` times.

    With ``measure_cycles`` the runner reads the probes before the first pass and after each one,
    for the ``cycle_growth`` assertion: the first ``warmup`` passes fill caches and are not judged;
    bytes of the ``ignore_sites`` allocation sites (spent again by design in every pass, such as a
    copy of each websocket frame) are taken out of each pass's growth.
    """

    KIND: ClassVar[str] = "repeat"
    times: int = arg(IntRange(1, 10_000), doc="passes", explore=IntRange(2, 50))
    steps: tuple[Step, ...] = arg(StepList(), doc="the body")
    # explore judges returns to a page state with revisit_growth; a file may measure one repeat
    measure_cycles: bool = arg(
        Flag(), False, "read the probes around each pass (cycle_growth)", generate=False
    )
    warmup: int = arg(IntRange(0, 10_000), 1, "passes not judged", generate=False)
    ignore_sites: tuple[str, ...] = arg(SiteNames(), (), "sites re-spent by design", generate=False)

    def provides(self) -> frozenset[str]:
        return frozenset({"cycles"}) if self.measure_cycles else frozenset()

    def children(self) -> tuple[Step, ...]:
        return self.steps

    def validate(self, given: frozenset[str], nested: bool) -> None:
        for key in ("warmup", "ignore_sites"):
            if key in given and not self.measure_cycles:
                raise BadStep(f"repeat.{key} needs measure_cycles = true", key)
        if not self.measure_cycles:
            return
        if nested:
            raise BadStep("measure_cycles is allowed only on a top-level repeat", "measure_cycles")
        if self.warmup >= self.times:
            raise BadStep(
                f"repeat.warmup ({self.warmup}) must be less than times ({self.times}): "
                "no pass would be measured",
                "warmup" if "warmup" in given else None,
            )

    def unroll(self) -> Iterator[Step | CycleMark]:
        """The body ``times`` times (pass i with ``k_step x i`` applied), cycle marks around passes."""
        if self.measure_cycles:
            yield CycleMark("cycle-start")
        for i in range(self.times):
            yield from expand(self.steps, i)
            if self.measure_cycles:
                yield CycleMark("cycle-end")
