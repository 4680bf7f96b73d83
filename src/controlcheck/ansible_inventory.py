"""Ansible inventories (INI and YAML) read as controlcheck hosts.

A scoped parser of the two documented static formats
(https://docs.ansible.com/ansible/latest/inventory_guide/intro_inventory.html),
not a dependency on ansible-core (~40 MB, plugins, Jinja at load time).
Supported: ungrouped hosts, ``[group]``, ``[group:vars]``, ``[group:children]``,
numeric and alphabetic host ranges (``web[01:03]``, ``db-[a:c]``), the YAML
``all: {hosts, vars, children}`` tree, and variable precedence host > child group
> parent group > all.  Mapped variables: ``ansible_host`` → address,
``ansible_port`` → port, ``ansible_user`` → user, ``ansible_ssh_private_key_file``
→ key_file, ``ansible_become`` → sudo, ``ansible_connection=local`` → local
transport; groups become the host's ``groups``.  Not supported (refused with the
line, never guessed): dynamic inventory scripts/plugins, vaulted values and Jinja
templates in mapped variables.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from controlcheck.yamlio import ConfigError, Document, load_yaml, validate

_RANGE = re.compile(r"\[([0-9a-z]+):([0-9a-z]+)(?::(\d+))?\]")
_TRUE = {"true", "yes", "1", "on"}


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name
        self.hosts: dict[str, dict[str, Any]] = {}  # host → its own vars
        self.vars: dict[str, Any] = {}
        self.children: list[str] = []


def _expand(pattern: str) -> list[str]:
    m = _RANGE.search(pattern)
    if not m:
        return [pattern]
    first, last, step = m.group(1), m.group(2), int(m.group(3) or 1)
    if first.isdigit() and last.isdigit():
        width = len(first) if first.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(first), int(last) + 1, step)]
    elif len(first) == len(last) == 1 and first.isalpha():
        letters = string.ascii_lowercase
        items = list(letters[letters.index(first):letters.index(last) + 1:step])
    else:
        raise ValueError(f"host range {m.group(0)} not understood")
    out = []
    for item in items:
        out.extend(_expand(pattern[:m.start()] + item + pattern[m.end():]))
    return out


def _value(raw: str) -> Any:
    """INI values are YAML scalars in Ansible's INI loader (numbers, booleans, strings)."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _parse_ini(path: Path, text: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
    section, kind = "ungrouped", "hosts"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = re.match(r"^\[([^\]:]+)(?::(vars|children))?\]$", line)
            if not m:
                raise ConfigError(path, n, f"bad section header {line!r}")
            section, kind = m.group(1), m.group(2) or "hosts"
            groups.setdefault(section, _Group(section))
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ConfigError(path, n, f"cannot split line: {exc}") from None
        group = groups[section]
        if kind == "vars":
            key, sep, val = line.partition("=")
            if not sep:
                raise ConfigError(path, n, "expected key=value in a :vars section")
            group.vars[key.strip()] = _value(val.strip())
        elif kind == "children":
            group.children.append(tokens[0])
            groups.setdefault(tokens[0], _Group(tokens[0]))
        else:
            hvars: dict[str, Any] = {}
            for tok in tokens[1:]:
                key, sep, val = tok.partition("=")
                if not sep:
                    raise ConfigError(path, n, f"host variable {tok!r} is not key=value")
                hvars[key] = _value(val)
            pattern = tokens[0]
            m = re.match(r"^([^:\[\]]+|.*\])\:(\d+)$", pattern)  # "host:5309" (not IPv6)
            if m:
                hvars.setdefault("ansible_port", int(m.group(2)))
                pattern = m.group(1)
            try:
                names = _expand(pattern)
            except ValueError as exc:
                raise ConfigError(path, n, str(exc)) from None
            for name in names:
                group.hosts.setdefault(name, {}).update(hvars)
    return groups


def _parse_yaml(doc: Document) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}

    def walk(name: str, body: Any, key: tuple[str | int, ...]) -> None:
        group = groups.setdefault(name, _Group(name))
        if body is None:
            return
        if not isinstance(body, dict):
            raise doc.error(key, f"group {name!r} must be a mapping with hosts/vars/children")
        for host, hvars in (body.get("hosts") or {}).items():
            for h in _expand(str(host)):
                group.hosts.setdefault(h, {}).update(hvars or {})
        group.vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            group.children.append(child)
            walk(child, child_body, (*key, "children", child))

    for top, body in doc.data.items():
        walk(str(top), body, (top,))
    return groups


def _parents(groups: dict[str, _Group]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {}
    for g in groups.values():
        for c in g.children:
            parents.setdefault(c, []).append(g.name)
    return parents


def _ancestry(name: str, parents: dict[str, list[str]], seen: set[str]) -> Iterator[str]:
    """Group and its ancestors, nearest first (cycles tolerated, each group once)."""
    if name in seen:
        return
    seen.add(name)
    yield name
    for p in parents.get(name, []):
        yield from _ancestry(p, parents, seen)


def _host_entry(name: str, hvars: dict[str, Any], member_of: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if "ansible_host" in hvars:
        entry["address"] = str(hvars["ansible_host"])
    if "ansible_port" in hvars:
        entry["port"] = int(hvars["ansible_port"])
    if "ansible_user" in hvars:
        entry["user"] = str(hvars["ansible_user"])
    if "ansible_ssh_private_key_file" in hvars:
        entry["key_file"] = str(hvars["ansible_ssh_private_key_file"])
    if "ansible_become" in hvars:
        entry["sudo"] = str(hvars["ansible_become"]).lower() in _TRUE
    if str(hvars.get("ansible_connection", "ssh")) == "local":
        entry["transport"] = "local"
    groups = [g for g in member_of if g not in ("all", "ungrouped")]
    if groups:
        entry["groups"] = groups
    for key, val in entry.items():
        if isinstance(val, str) and ("{{" in val or val.startswith("$ANSIBLE_VAULT")):
            raise ValueError(f"host {name}: {key} uses a Jinja template or vault value, which "
                             "controlcheck does not evaluate; give the literal value")
    return entry


def _to_hosts(groups: dict[str, _Group]) -> list[dict[str, Any]]:
    parents = _parents(groups)
    for gname in groups:
        if gname != "all" and not parents.get(gname):
            parents.setdefault(gname, []).append("all")
    order: list[str] = []
    own: dict[str, dict[str, Any]] = {}
    member: dict[str, list[str]] = {}
    for group in groups.values():
        for h, hv in group.hosts.items():
            if h not in own:
                order.append(h)
                own[h] = {}
                member[h] = []
            own[h].update(hv)
            member[h].append(group.name)
    hosts = []
    for h in order:
        chain: list[str] = []
        for g in member[h]:
            for a in _ancestry(g, parents, set()):
                if a not in chain:
                    chain.append(a)
        merged: dict[str, Any] = {}
        # Farther groups first so nearer ones (and then the host) override them.
        for g in reversed(chain):
            merged.update(groups[g].vars)
        merged.update(own[h])
        hosts.append(_host_entry(h, merged, chain))
    return hosts


def load_ansible_inventory(path: Path) -> Document:
    """Read an Ansible INI or YAML inventory as a controlcheck inventory document."""
    if path.suffix in (".yaml", ".yml"):
        src = load_yaml(path)
        groups = _parse_yaml(src)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(path, None, "file not found") from None
        groups = _parse_ini(path, text)
    try:
        hosts = _to_hosts(groups)
    except ValueError as exc:
        raise ConfigError(path, None, str(exc)) from None
    doc = Document(path, {"hosts": hosts}, {(): 1})
    validate(doc, "inventory.schema.json")
    return doc
