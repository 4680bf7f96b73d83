"""``controlcheck diff OLD NEW``: what broke (and what got fixed) between two reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from controlcheck.cli.common import config_error
from controlcheck.yamlio import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diff", help="compare two report.json files")
    p.add_argument("older", type=Path)
    p.add_argument("newer", type=Path)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from controlcheck.history import diff_reports, load_report
    from controlcheck.reporters.diff_text import print_diff

    try:
        diff = diff_reports(load_report(args.older), load_report(args.newer))
    except ConfigError as exc:
        return config_error(exc)
    if args.format == "json":
        print(json.dumps(diff.to_json(), indent=2))
    else:
        print_diff(diff, Console())
    # Exit 1 when something new failed or regressed: usable as a gate on drift.
    return 1 if diff.of_kind("new-failure", "regressed") else 0
