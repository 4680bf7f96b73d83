"""Which secret values a run must never write anywhere.

The inventory names secrets only indirectly (``password_env``,
``token_env``, …); their values are read from the environment here so the
evidence store can redact them should a probe ever see one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from controlcheck.inventory import Inventory


def secret_values(inventory: Inventory) -> list[str]:
    values = set()
    for target in inventory.targets:
        for key, value in _walk(target.spec):
            if key.endswith("_env") and isinstance(value, str) and os.environ.get(value):
                values.add(os.environ[value])
    return sorted(values)


def _walk(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield str(k), v
            yield from _walk(v)
    elif isinstance(obj, list):
        for item in obj:
            yield from _walk(item)
