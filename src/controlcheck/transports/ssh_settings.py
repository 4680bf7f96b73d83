"""Where and how to connect to a host over SSH: inventory entry + ``~/.ssh/config``.

Pure resolution (no network): the inventory wins over ``~/.ssh/config`` the way
command-line options win over the config file for OpenSSH, and OpenSSH's own
defaults fill the rest.  Kept apart from the connection code so it can be
unit-tested on real config files.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
MAX_JUMPS = 4  # ProxyJump chains longer than this are almost certainly a loop


@dataclass(frozen=True)
class SSHOptions:
    """Run-wide SSH settings, passed in by the CLI (never module globals).

    ``trust_new_host_keys`` records unknown keys in the first writable
    known_hosts file; a *changed* key is refused regardless.
    """

    trust_new_host_keys: bool = False
    ssh_config: Path | None = Path("~/.ssh/config")
    known_hosts: tuple[Path, ...] = (Path("~/.ssh/known_hosts"),)
    use_agent: bool = True
    connect_timeout: float = 10.0
    banner_timeout: float = 10.0
    auth_timeout: float = 15.0


@dataclass(frozen=True)
class Endpoint:
    """One SSH hop: where to connect and as whom."""

    alias: str  # the name the user wrote (inventory name or ProxyJump item)
    hostname: str  # address actually connected to
    port: int
    user: str
    key_files: tuple[str, ...] = ()
    identities_only: bool = False

    @property
    def known_hosts_name(self) -> str:
        """The key under which known_hosts stores this host (OpenSSH convention)."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


@dataclass(frozen=True)
class Route:
    """The target hop and the jump hosts in front of it (first hop first)."""

    target: Endpoint
    jumps: tuple[Endpoint, ...] = ()
    known_hosts: tuple[Path, ...] = field(default_factory=tuple)


def load_ssh_config(path: Path | None) -> paramiko.SSHConfig:
    if path is None:
        return paramiko.SSHConfig()
    p = path.expanduser()
    if not p.is_file():
        return paramiko.SSHConfig()
    return paramiko.SSHConfig.from_path(str(p))


def _split_jump(item: str) -> tuple[str | None, str, int | None]:
    """``user@host:port`` → (user, host, port); ``[v6]:port`` is accepted too."""
    user = None
    if "@" in item:
        user, item = item.rsplit("@", 1)
    port: int | None = None
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
        return user, host, port
    if item.count(":") == 1:
        host, p = item.split(":")
        return user, host, int(p)
    return user, item, None


def _endpoint(alias: str, config: paramiko.SSHConfig, *, hostname: str | None = None,
              port: int | None = None, user: str | None = None,
              key_files: Sequence[str] = ()) -> Endpoint:
    found: Mapping[str, Any] = config.lookup(alias)
    keys = tuple(key_files) or tuple(found.get("identityfile", ()))
    return Endpoint(
        alias=alias,
        hostname=hostname or str(found.get("hostname", alias)),
        port=int(port or found.get("port", 22)),
        user=user or str(found.get("user") or getpass.getuser()),
        key_files=keys,
        identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
    )


def resolve_route(spec: Mapping[str, Any], name: str, options: SSHOptions,
                  config: paramiko.SSHConfig | None = None) -> Route:
    """The route to a host from its inventory entry (``address``, ``port``, ``user``,
    ``key_file``, ``proxy_jump``, ``known_hosts``) and the SSH config."""
    config = config if config is not None else load_ssh_config(options.ssh_config)
    key_files = [spec["key_file"]] if spec.get("key_file") else []
    # Look the entry up by its name (what a user writes in ~/.ssh/config) unless an
    # address is given, in which case that address is the alias, like `ssh ADDRESS`.
    alias = str(spec.get("address") or name)
    target = _endpoint(alias, config, port=spec.get("port"), user=spec.get("user"),
                       key_files=key_files)
    jump_line = spec.get("proxy_jump") or config.lookup(alias).get("proxyjump")
    jumps: list[Endpoint] = []
    if jump_line and str(jump_line).lower() != "none":
        for item in str(jump_line).split(","):
            j_user, j_host, j_port = _split_jump(item.strip())
            jumps.append(_endpoint(j_host, config, port=j_port, user=j_user))
        if len(jumps) > MAX_JUMPS:
            raise ValueError(f"{name}: ProxyJump chain longer than {MAX_JUMPS} hops")
    known = [Path(p) for p in spec.get("known_hosts", [])] if isinstance(
        spec.get("known_hosts"), list) else ([Path(spec["known_hosts"])]
                                             if spec.get("known_hosts") else [])
    return Route(target, tuple(jumps), tuple(known) + options.known_hosts)


def default_identities() -> list[str]:
    return [p for p in DEFAULT_IDENTITIES if os.path.exists(os.path.expanduser(p))]
