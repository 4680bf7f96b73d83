"""``controlcheck controls``: list the catalogue with its framework mapping."""

from __future__ import annotations

import argparse
import json

from controlcheck.cli.common import add_config_args, config_error, usage_error
from controlcheck.yamlio import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("controls", help="list controls and their framework references")
    add_config_args(p)
    p.add_argument("--framework", choices=["gdpr", "iso27001", "cis", "nist"],
                   help="show only this framework's references (and controls mapped to it)")
    p.add_argument("--only", action="append", default=[], metavar="CONTROL",
                   help="only these control ids, families or check ids")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from controlcheck.catalogue import FRAMEWORKS, load_catalogue

    try:
        catalogue = load_catalogue(args.controls).select(args.only, args.framework)
    except ConfigError as exc:
        return config_error(exc)
    if not catalogue.controls:
        return usage_error("no control matches the selection")
    frameworks = [args.framework] if args.framework else list(FRAMEWORKS)
    if args.format == "json":
        print(json.dumps([{
            "id": c.id, "family": c.family, "title": c.title, "severity": c.severity.value,
            "applies_to": [k.value for k in c.applies_to],
            "checks": [ch.id for ch in c.checks],
            "frameworks": {f: list(c.frameworks.get(f, ())) for f in frameworks},
        } for c in catalogue.controls], indent=2))
        return 0
    table = Table(title="controlcheck catalogue")
    for col in ("id", "title", "sev", "applies to", "checks", *frameworks):
        table.add_column(col, overflow="fold")
    for c in catalogue.controls:
        table.add_row(c.id, c.title, c.severity.value, ", ".join(k.value for k in c.applies_to),
                      "\n".join(ch.id for ch in c.checks),
                      *(", ".join(c.frameworks.get(f, ())) for f in frameworks))
    Console().print(table)
    return 0
