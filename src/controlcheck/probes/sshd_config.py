"""Pure parsing and judging of ``sshd -T`` (the effective sshd configuration).

Decisions (documented in the check message and the README):

* ``permitrootlogin``: only the values in the ``permit_root_login`` parameter
  pass (default ``["no"]``: DESIGN says "no root login").  ``prohibit-password``
  (alias ``without-password``, Debian's default) still lets root log in with a
  key and ``forced-commands-only`` lets root run the key's forced command; a
  site that accepts either adds it to the parameter.
* ``passwordauthentication yes`` fails; so does ``kbdinteractiveauthentication
  yes`` (``challengeresponseauthentication`` on OpenSSH < 8.7) together with
  ``usepam yes``, because PAM's keyboard-interactive conversation asks for the
  account password.  Without PAM, Linux sshd has no keyboard-interactive
  device, so that combination is not a password path.
* A password path that ``authenticationmethods`` makes a *second* factor (every
  method list contains ``publickey``) is not a password login and passes.
* ``permitemptypasswords yes`` fails whenever any password path is open; it
  fails on its own too (strict: it is one config change away from active).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class SshdParseError(ValueError):
    pass


def parse_sshd_t(text: str) -> dict[str, str]:
    """``keyword value…`` lines → {keyword: value}; repeated keywords are joined by newline."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        key = key.lower()
        config[key] = f"{config[key]}\n{value}" if key in config else value
    if "permitrootlogin" not in config or "passwordauthentication" not in config:
        raise SshdParseError("output does not look like 'sshd -T' (no permitrootlogin / "
                             "passwordauthentication keyword)")
    return config


@dataclass(frozen=True)
class SshdVerdict:
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _password_is_second_factor(methods: str) -> bool:
    value = methods.strip()
    if not value or value == "any":
        return False
    lists = value.split()
    return all("publickey" in m.split(",") for m in lists)


def judge_sshd(config: Mapping[str, str], permit_root_login: Sequence[str]) -> SshdVerdict:
    problems: list[str] = []
    notes: list[str] = []
    root = config.get("permitrootlogin", "").lower()
    allowed_root = [v.lower() for v in permit_root_login]
    if "prohibit-password" in allowed_root:
        allowed_root.append("without-password")  # the old name sshd -T may still print
    if root not in allowed_root:
        problems.append(f"PermitRootLogin is '{root}' (allowed: {', '.join(permit_root_login)})")
    second_factor = _password_is_second_factor(config.get("authenticationmethods", "any"))
    password = config.get("passwordauthentication", "").lower() == "yes"
    kbd_key = ("kbdinteractiveauthentication" if "kbdinteractiveauthentication" in config
               else "challengeresponseauthentication")
    kbd = config.get(kbd_key, "no").lower() == "yes"
    pam = config.get("usepam", "no").lower() == "yes"
    if password and second_factor:
        notes.append("PasswordAuthentication is yes but AuthenticationMethods "
                     f"'{config['authenticationmethods']}' requires a public key first")
    elif password:
        problems.append("PasswordAuthentication is 'yes'")
    if kbd and pam and not second_factor:
        problems.append(f"{kbd_key} is 'yes' with UsePAM 'yes' (PAM asks for the password)")
    elif kbd and not pam:
        notes.append(f"{kbd_key} is 'yes' but UsePAM is 'no' (no password device)")
    if config.get("permitemptypasswords", "no").lower() == "yes":
        problems.append("PermitEmptyPasswords is 'yes'")
    return SshdVerdict(tuple(problems), tuple(notes))
