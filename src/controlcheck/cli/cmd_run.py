"""``controlcheck run``: the whole catalogue against the inventory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlcheck.cli import cmd_bundle
from controlcheck.cli.common import add_config_args, config_error, usage_error
from controlcheck.yamlio import ConfigError

SEVERITIES = ("low", "medium", "high", "critical")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from controlcheck.reporters import FORMATS

    p = sub.add_parser("run", help="run the catalogue against the inventory")
    add_config_args(p)
    p.add_argument("--format", choices=sorted(FORMATS), default="json",
                   help="format of the report file (default json)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="report file; '-' writes it to stdout (default: report.json, report.html, "
                        "report.oscal.json, junit.xml or report.sarif by format)")
    p.add_argument("--fail-on", choices=SEVERITIES, default="low",
                   help="lowest severity whose failure makes the exit code 1 (default low)")
    p.add_argument("--limit", action="append", default=[], metavar="PATTERN",
                   help="only targets whose name, group or tag matches (glob; repeatable)")
    p.add_argument("--only", action="append", default=[], metavar="CONTROL",
                   help="only these control ids, families or check ids (repeatable)")
    p.add_argument("--workers", type=int, default=64,
                   help="targets checked at once; each holds one SSH connection (default 64)")
    p.add_argument("--trust-new-host-keys", action="store_true",
                   help="accept and record SSH host keys not yet in known_hosts "
                        "(a changed key is always refused)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="deadline in seconds for each network step or command (default 30)")
    p.add_argument("--baseline", type=Path, metavar="REPORT",
                   help="an earlier report.json: show what changed since then")
    p.add_argument("--history", type=Path, metavar="DIR",
                   help="keep every report in DIR and show what changed since the previous run")
    p.add_argument("--verbose", "-v", action="store_true", help="show every result, not only findings")
    p.add_argument("--quiet", "-q", action="store_true", help="no terminal summary")
    cmd_bundle.add_run_options(p)
    p.set_defaults(func=run)


DEFAULT_OUTPUT = {"json": "report.json", "html": "report.html", "oscal": "report.oscal.json",
                  "junit": "junit.xml", "sarif": "report.sarif"}


def run(args: argparse.Namespace) -> int:
    import importlib

    args.output = args.output or DEFAULT_OUTPUT.get(args.format, f"report.{args.format}")

    from rich.console import Console

    from controlcheck.catalogue import load_catalogue
    from controlcheck.engine import Engine
    from controlcheck.inventory import load_inventory
    from controlcheck.model import Severity
    from controlcheck.preflight import preflight
    from controlcheck.reporters import FORMATS
    from controlcheck.reporters.text import print_summary
    from controlcheck.secrets import secret_values
    from controlcheck.transports.factory import open_transport
    from controlcheck.verdict import exit_code

    try:
        catalogue = load_catalogue(args.controls).select(args.only)
        inventory = load_inventory(args.inventory).limited(args.limit)
        preflight(catalogue, inventory)
        from controlcheck.engine import utc_now
        from controlcheck.waivers import waiver_hooks

        hooks = waiver_hooks(inventory, utc_now)  # loaded once: fail → waived, same for all reports
    except ConfigError as exc:
        return config_error(exc)
    if args.only and not catalogue.controls:
        return usage_error(f"--only {' '.join(args.only)} matches no control, family or check id")
    signing_key, key_problem = cmd_bundle.load_run_signing_key(args)
    if key_problem:
        return usage_error(key_problem)

    to_stdout = args.output == "-"
    console = Console(stderr=True) if to_stdout else Console()
    progress_console = Console(stderr=True)
    from functools import partial

    from controlcheck.transports.ssh_jumps import JumpHosts
    from controlcheck.transports.ssh_settings import SSHOptions

    ssh_options = SSHOptions(trust_new_host_keys=args.trust_new_host_keys,
                             connect_timeout=min(args.timeout, 10.0),
                             banner_timeout=min(args.timeout, 10.0),
                             auth_timeout=min(args.timeout, 15.0))
    jumps = JumpHosts()  # one login per bastion for the whole run, closed below
    engine_kwargs = dict(transport_factory=partial(open_transport, ssh_options=ssh_options,
                                                   jumps=jumps),
                         workers=args.workers,
                         timeout=args.timeout, secrets=secret_values(inventory))
    from controlcheck.reporters.progress import RunProgress

    engine = Engine(catalogue, inventory, result_hooks=hooks,
                    **engine_kwargs)  # type: ignore[arg-type]
    try:
        with RunProgress(engine.planned, progress_console,
                         enabled=not args.quiet and progress_console.is_terminal) as progress:
            engine.observers.append(progress)
            result = engine.run()
    finally:
        jumps.close()

    fail_on = Severity(args.fail_on)
    text = importlib.import_module(FORMATS[args.format]).render(result, fail_on)
    if to_stdout:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    if not args.quiet:
        print_summary(result, console, verbose=args.verbose)
        if not to_stdout:
            console.print(f"report written to {args.output}")
    cmd_bundle.write_run_bundle(args, result, fail_on, signing_key, console)
    _show_changes(args, result, fail_on, console)
    return exit_code(result.results, fail_on)


def _show_changes(args: argparse.Namespace, result: object, fail_on: object, console: object) -> None:
    """--baseline / --history: compare with an earlier run (JSON report either way)."""
    if not (args.baseline or args.history):
        return
    from controlcheck import history
    from controlcheck.reporters.diff_text import print_diff
    from controlcheck.reporters.json_report import build_report, dumps

    report = build_report(result, fail_on)  # type: ignore[arg-type]
    older_path = args.baseline
    if args.history:
        stored = history.store(args.history, dumps(report), report)
        older_path = older_path or history.previous(args.history, exclude=stored)
    if older_path is None:
        console.print("no earlier run in the history yet: nothing to compare")  # type: ignore[attr-defined]
        return
    try:
        older = history.load_report(older_path)
    except ConfigError as exc:
        console.print(f"cannot compare: {exc.one_line()}")  # type: ignore[attr-defined]
        return
    if not args.quiet:
        print_diff(history.diff_reports(older, report), console)  # type: ignore[arg-type]
