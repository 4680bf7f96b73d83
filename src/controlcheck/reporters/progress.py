"""Live progress of a run: checks done, and hosts done / failed.

A host counts as *failed* when any of its checks could not be decided
(``error``: unreachable, refused key, timeout) — the number an operator of
a fleet run watches.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from controlcheck.engine import PlannedCheck
from controlcheck.model import CheckResult, Status


class RunProgress:
    """Engine observer driving a rich progress bar; a no-op when not on a terminal."""

    def __init__(self, items: Sequence[PlannedCheck], console: Console, *, enabled: bool) -> None:
        self._left = Counter(i.target.name for i in items if i.target is not None)
        self._hosts = len(self._left)
        self._failed: set[str] = set()
        self._done = 0
        self._lock = threading.Lock()
        self.progress = Progress(
            TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(),
            TextColumn("targets {task.fields[done]}/{task.fields[hosts]} done, "
                       "[yellow]{task.fields[failed]} undecided[/]"),
            TextColumn("[dim]{task.fields[last]}"), TimeElapsedColumn(),
            console=console, transient=True, disable=not enabled)
        self.task = self.progress.add_task("run", total=len(items), done=0, hosts=self._hosts,
                                           failed=0, last="")

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, result: CheckResult) -> None:
        with self._lock:
            if result.status == Status.ERROR:
                self._failed.add(result.target)
            if result.target in self._left:
                self._left[result.target] -= 1
                if self._left[result.target] == 0:
                    self._done += 1
            self.progress.update(self.task, advance=1, done=self._done, failed=len(self._failed),
                                 last=f"{result.target} {result.check}")
