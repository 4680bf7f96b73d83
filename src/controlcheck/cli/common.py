"""Shared argument groups and error printing for the commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controlcheck.verdict import EXIT_USAGE
from controlcheck.yamlio import ConfigError


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--controls", type=Path, metavar="DIR",
                   help="control catalogue directory (default: the packaged catalogue)")
    p.add_argument("-i", "--inventory", type=Path, metavar="FILE",
                   help="inventory file or directory (default: this machine)")


def config_error(exc: ConfigError) -> int:
    print(f"controlcheck: error: {exc.one_line()}", file=sys.stderr)
    return EXIT_USAGE


def usage_error(message: str) -> int:
    print(f"controlcheck: error: {message}", file=sys.stderr)
    return EXIT_USAGE
