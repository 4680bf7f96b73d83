"""Command line: parse arguments, call the library, choose the exit code.

Each command lives in its own module with ``register(subparsers)``; heavy
imports happen inside the command functions so ``--version`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from controlcheck import __version__

COMMANDS = ("run", "validate", "controls", "diff", "tls", "bundle", "keygen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="controlcheck",
        description="Check promised security controls against hosts and endpoints.")
    parser.add_argument("--version", action="version", version=f"controlcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"controlcheck.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"controlcheck.cli.cmd_{name}":
                continue  # command not shipped in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--version"]:
        print(f"controlcheck {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("controlcheck: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
