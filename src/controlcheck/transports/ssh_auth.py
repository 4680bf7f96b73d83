"""Public-key authentication: key files named by the inventory or ~/.ssh/config, the
SSH agent, then OpenSSH's default identities.  No passwords (a batch tool must
not hold them); a message lists what was tried, never key material."""

from __future__ import annotations

import os

import paramiko

from controlcheck.transports.base import AuthError
from controlcheck.transports.ssh_settings import Endpoint, default_identities


def _key_files(hop: Endpoint) -> list[str]:
    files = list(hop.key_files)
    if not hop.identities_only or not files:
        files += [f for f in default_identities() if f not in files]
    return files


def authenticate(name: str, transport: paramiko.Transport, hop: Endpoint, *,
                 use_agent: bool) -> None:
    tried: list[str] = []
    problems: list[str] = []
    for path in _key_files(hop):
        full = os.path.expanduser(path)
        try:
            key = paramiko.PKey.from_path(full)
        except paramiko.PasswordRequiredException:
            problems.append(f"{path} is encrypted (load it into ssh-agent)")
            continue
        except (OSError, paramiko.SSHException, ValueError) as exc:
            problems.append(f"{path} unreadable ({type(exc).__name__})")
            continue
        tried.append(path)
        if _try(name, transport, hop.user, key):
            return
    if use_agent and (not hop.identities_only or not hop.key_files) \
            and os.environ.get("SSH_AUTH_SOCK"):
        agent = paramiko.Agent()
        try:
            for n, key in enumerate(agent.get_keys()):
                tried.append(f"agent key {n + 1}")
                if _try(name, transport, hop.user, key):
                    return
        finally:
            agent.close()
    detail = ", ".join(tried) or "no key at all"
    if problems:
        detail += "; skipped: " + ", ".join(problems)
    raise AuthError(f"{name}: {hop} refused every key (tried {detail}); give a key with "
                    "'key_file:' in the inventory, IdentityFile in ~/.ssh/config, or ssh-agent")


def _try(name: str, transport: paramiko.Transport, user: str, key: paramiko.PKey) -> bool:
    try:
        remaining = transport.auth_publickey(user, key)
    except paramiko.BadAuthenticationType as exc:
        raise AuthError(f"{name}: the server does not accept public keys for {user} "
                        f"(allowed: {', '.join(exc.allowed_types)})") from None
    except paramiko.AuthenticationException:
        return False
    except paramiko.SSHException as exc:
        if not transport.is_active():  # sshd hung up: MaxAuthTries reached
            raise AuthError(f"{name}: the server closed the connection after too many "
                            f"refused keys for {user}; name the right key with "
                            "'key_file:'") from None
        raise AuthError(f"{name}: public key authentication failed ({exc})") from None
    return not remaining  # a non-empty list means a further factor is required
