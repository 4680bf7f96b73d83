"""Ansible inventories (INI and YAML) read as controlcheck hosts."""

from __future__ import annotations

from pathlib import Path

from controlcheck.yamlio import ConfigError, Document


def load_ansible_inventory(path: Path) -> Document:
    raise ConfigError(path, None, "Ansible inventories are not supported yet; "
                      "write a controlcheck inventory (see README)")
