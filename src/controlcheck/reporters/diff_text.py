"""Terminal view of a ``history.Diff``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from controlcheck.history import Diff

_ORDER = ("new-failure", "regressed", "fixed", "changed", "added", "removed")
_STYLE = {"new-failure": "bold red", "regressed": "yellow", "fixed": "green",
          "changed": "cyan", "added": "dim", "removed": "dim"}


def print_diff(diff: Diff, console: Console) -> None:
    console.print(f"since run {diff.older.get('id', '?')[:8]} of {diff.older.get('started', '?')}:")
    if not diff.changes:
        console.print("no result changed")
        return
    table = Table(show_lines=False)
    for col in ("change", "control", "check", "target", "before → after", "message"):
        table.add_column(col, overflow="fold")
    for kind in _ORDER:
        for c in diff.of_kind(kind):
            table.add_row(f"[{_STYLE[kind]}]{kind}[/]", c.control, c.check, c.target,
                          f"{c.before or '—'} → {c.after or '—'}", c.message)
    console.print(table)
    counts = {k: len(diff.of_kind(k)) for k in _ORDER}
    console.print("  ".join(f"[{_STYLE[k]}]{k} {v}[/]" for k, v in counts.items() if v))
