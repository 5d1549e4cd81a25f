"""The documentation tables, written from the declarations: step types and assertions with their thresholds.

docs/scenarios.md keeps each table between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
markers; ``python -m relaysim.scenario.doc_tables docs/scenarios.md`` rewrites them, and a test fails
when a declaration changed and the docs were not rewritten. So a new step type or assertion reaches
the docs without anyone editing a table by hand.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from relaysim.analysis import ASSERTIONS, Thresholds
from relaysim.scenario._step import STEP_CLASSES, Step, arguments

__all__ = ["TABLES", "assertions_table", "refresh", "steps_table", "thresholds_table"]


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _default(value: object) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def steps_table(classes: Sequence[type[Step]] | None = None) -> str:
    """One row per registered step type: ``do`` name, arguments (type; default or required), meaning."""
    rows = ["| `do` | arguments | what happens |", "|---|---|---|"]
    for cls in classes or list(STEP_CLASSES.values()):
        args = []
        for a in arguments(cls):
            when = "required" if a.required else f"default {_default(a.default)}"
            doc = f": {a.doc}" if a.doc else ""
            args.append(f"`{a.name}` ({a.type.describe()}; {when}){doc}")
        generated = " Explore generates it." if cls.BROWSING else ""
        rows.append(
            f"| `{cls.KIND}` | {_cell('; '.join(args)) or '—'} | {_cell(_first_paragraph(cls))}{generated} |"
        )
    return "\n".join(rows) + "\n"


def assertions_table() -> str:
    """One row per registered assertion: what it measures, how it passes, what a scenario needs first."""
    rows = ["| assertion | measured | passes when | needs before it |", "|---|---|---|---|"]
    for a in ASSERTIONS.values():
        needs = a.requires_text or "—"
        passes = f"measured `{a.comparison}` `{a.limit_key}` ({a.unit})"
        rows.append(f"| `{a.name}` | {_cell(a.summary)} | {passes} | {needs} |")
    return "\n".join(rows) + "\n"


def thresholds_table() -> str:
    """One row per ``[thresholds]`` key: its default (the seed's where the seed gives one) and owner."""
    owner = {t.key: a.name for a in ASSERTIONS.values() for t in a.thresholds}
    rows = ["| key | default | assertion | meaning |", "|---|---|---|---|"]
    for t in Thresholds.declared():
        default = f"{t.default:g}"
        if t.default >= 1024 * 1024 and t.default % (1024 * 1024) == 0:
            default = f"{int(t.default)} ({int(t.default) // (1024 * 1024)} MiB)"
        rows.append(f"| `{t.key}` | {default} | `{owner[t.key]}` | {_cell(t.doc)} |")
    return "\n".join(rows) + "\n"


TABLES: dict[str, Callable[[], str]] = {
    "steps": steps_table,
    "assertions": assertions_table,
    "thresholds": thresholds_table,
}


def refresh(text: str) -> str:
    """``text`` with every generated block rewritten from the current declarations."""

    def block(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in TABLES:
            return m.group(0)
        return f"<!-- generated:{name} -->\n{TABLES[name]()}<!-- /generated:{name} -->"

    return re.sub(r"<!-- generated:(\w+) -->\n.*?<!-- /generated:\1 -->", block, text, flags=re.S)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the generated blocks of each file named (default docs/scenarios.md)."""
    for name in argv or ["docs/scenarios.md"]:
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        new = refresh(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"{path}: tables rewritten")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
