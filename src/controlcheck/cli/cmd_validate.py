"""``controlcheck validate``: check catalogue and inventory, run nothing."""

from __future__ import annotations

import argparse

from controlcheck.cli.common import add_config_args, config_error
from controlcheck.yamlio import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="validate the catalogue and inventory")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from controlcheck.catalogue import load_catalogue
    from controlcheck.inventory import load_inventory
    from controlcheck.preflight import preflight

    try:
        catalogue = load_catalogue(args.controls)
        inventory = load_inventory(args.inventory)
        preflight(catalogue, inventory)
    except ConfigError as exc:
        return config_error(exc)
    print(f"ok: {len(catalogue.controls)} controls, "
          f"{sum(len(c.checks) for c in catalogue.controls)} checks, "
          f"{len(inventory.targets)} targets")
    return 0
