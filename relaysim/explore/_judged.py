"""Which assertions explore judges, and when: read from the registry, so a new one joins by itself.

Every run assertion that declares ``explore=True`` (the default) is judged: those that need an idle
point (``requires == "idle"``) at the end of an example, through the idle screen and, on a suspect,
the idle protocol; every other one after every step.
"""

from __future__ import annotations

from relaysim import analysis as an

__all__ = ["cheap_assertions", "idle_assertions"]


def idle_assertions() -> tuple[str, ...]:
    """Run assertions explore judges at an idle point (the idle screen, then the protocol)."""
    return tuple(n for n, a in an.ASSERTIONS.items() if a.explore and a.requires == "idle")


def cheap_assertions() -> tuple[str, ...]:
    """Run assertions explore judges after every step: every one it judges that needs no idle point."""
    return tuple(n for n, a in an.ASSERTIONS.items() if a.explore and a.requires != "idle")
