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
    _print_expiring_waivers(run, console)


def _print_expiring_waivers(run: Run, console: Console) -> None:
    """One line per waiver that ends within 14 days, so it is renewed or fixed in time."""
    from controlcheck.waivers import EXPIRY_WARNING_DAYS, expiring_soon

    soon = expiring_soon(run.results, run.started.date())
    if not soon:
        return
    console.print(f"[bold magenta]{len(soon)} waiver(s) expire within {EXPIRY_WARNING_DAYS} "
                  f"days:[/]")
    for r, left in soon:
        w = r.waiver or {}
        console.print(f"  waiver for {r.control} {r.check} on {r.target} expires on "
                      f"{w.get('expires')} ({left} days left; {w.get('source', '')}): renew it "
                      f"or fix the finding", markup=False, highlight=False)
