"""Terminal summary: one row per control, then what failed or could not be decided."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from controlcheck.engine import Run
from controlcheck.model import Status, count_by_status
from controlcheck.reporters.json_report import control_status

STYLE = {
    Status.PASS: "green", Status.FAIL: "bold red", Status.ERROR: "yellow",
    Status.SKIP: "dim", Status.MANUAL: "cyan", Status.WAIVED: "magenta",
}


def print_summary(run: Run, console: Console, *, verbose: bool = False) -> None:
    table = Table(title="controlcheck — controls", show_lines=False, expand=False)
    table.add_column("control", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("title")
    table.add_column("results", no_wrap=True)
    for control in run.catalogue.controls:
        rows = [r for r in run.results if r.control == control.id]
        status = control_status(rows)
        counts = count_by_status(rows)
        tally = " ".join(f"{k}:{v}" for k, v in counts.items() if v)
        table.add_row(control.id, f"[{STYLE[status]}]{status.value}[/]", control.severity.value,
                      control.title, tally)
    console.print(table)

    shown = [r for r in run.results
             if verbose or r.status in (Status.FAIL, Status.ERROR, Status.WAIVED)]
    if shown:
        detail = Table(title="findings", show_lines=False)
        for col in ("status", "control", "check", "target", "message"):
            detail.add_column(col, overflow="fold")
        for r in shown:
            detail.add_row(f"[{STYLE[r.status]}]{r.status.value}[/]", r.control, r.check,
                           r.target, r.message)
        console.print(detail)
    counts = count_by_status(run.results)
    line = "  ".join(f"[{STYLE[Status(k)]}]{k} {v}[/]" for k, v in counts.items())
    partial = " [bold yellow](partial run)[/]" if run.partial else ""
    console.print(f"{len(run.results)} results: {line}{partial}")
