"""Ansible INI and YAML inventories (examples from the Ansible inventory guide) read as
controlcheck hosts, through the same loader `controlcheck run -i` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlcheck.inventory import load_inventory
from controlcheck.model import TargetKind
from controlcheck.yamlio import ConfigError

DATA = Path(__file__).parent / "data" / "fleet" / "ansible"


def _hosts(path: Path) -> dict[str, dict[str, object]]:
    inv = load_inventory(path)
    return {t.name: dict(t.spec) for t in inv.of_kind(TargetKind.HOST)}


def test_ini_groups_children_vars_and_ranges() -> None:
    hosts = _hosts(DATA / "docs_groups.ini")
    assert hosts["mail.example.com"] == {"name": "mail.example.com"}
    assert hosts["badwolf.example.com"]["port"] == 5309
    assert {f"www0{i}.example.com" for i in (1, 2, 3)} <= set(hosts)
    assert hosts["two.example.com"] == {"name": "two.example.com", "address": "192.0.2.52",
                                        "user": "dbadmin", "groups": ["dbservers"]}
    # host1: nearer group (atlanta) beats its parent (southeast); become from the parent.
    assert hosts["host1"]["user"] == "atlanta" and hosts["host1"]["sudo"] is True
    assert hosts["host1"]["groups"] == ["atlanta", "southeast"]
    # host2 is in atlanta and raleigh; its own port wins.
    assert hosts["host2"]["port"] == 2222 and set(hosts["host2"]["groups"]) == {
        "atlanta", "raleigh", "southeast"}
    assert hosts["host3"]["key_file"] == "~/.ssh/raleigh_ed25519"
    assert hosts["host3"]["user"] == "southeast"
    assert hosts["control"]["transport"] == "local"


def test_yaml_tree() -> None:
    hosts = _hosts(DATA / "docs_tree.yml")
    assert hosts["mail.example.com"] == {"name": "mail.example.com", "user": "ops"}
    assert hosts["bar.example.com"]["port"] == 5309
    assert {"nginx1.example.com", "nginx2.example.com"} <= set(hosts)
    one = hosts["one.example.com"]
    assert one["address"] == "192.0.2.50" and one["sudo"] is True and one["user"] == "ops"
    assert set(one["groups"]) == {"dbservers", "prod"}  # type: ignore[arg-type]


def test_refuses_what_it_cannot_evaluate(tmp_path: Path) -> None:
    bad = tmp_path / "hosts"
    bad.write_text("[web]\nweb1 ansible_host=\"{{ lookup('env', 'X') }}\"\n")
    with pytest.raises(ConfigError, match="Jinja"):
        load_inventory(bad)
    bad.write_text("[web\nx\n")
    with pytest.raises(ConfigError, match=r"hosts:1: bad section header"):
        load_inventory(bad)
