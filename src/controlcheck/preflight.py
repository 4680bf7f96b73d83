"""Validation that needs both catalogue and inventory, run before any probe.

Families that read organisation files (attestations, registers, waivers)
add their loaders here so a malformed file is reported in the first second,
not after a long run.
"""

from __future__ import annotations

from collections.abc import Callable

from controlcheck.catalogue import Catalogue
from controlcheck.inventory import Inventory

Preflight = Callable[[Catalogue, Inventory], None]

# Each entry raises ConfigError (file:line) on a bad file.
PREFLIGHTS: list[Preflight] = []


def preflight(catalogue: Catalogue, inventory: Inventory) -> None:
    for check in PREFLIGHTS:
        check(catalogue, inventory)

# Organisation files (issue 5): registers, attestations, waivers — loaded here so a
# malformed CSV or YAML stops `validate`/`run` with file:line before any probe runs.
from controlcheck.attestations import check_attestations  # noqa: E402
from controlcheck.registers import check_registers  # noqa: E402
from controlcheck.waivers import check_waivers  # noqa: E402

PREFLIGHTS += [check_registers, check_attestations, check_waivers]
