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

import re
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


# --------------------------------------------------------------------------- Match blocks
#
# ``sshd -T`` without ``-C`` prints the global settings only: a ``Match Address
# 10.0.0.0/8`` block that turns PasswordAuthentication back on is invisible there.  The
# collector reads the real files (sshd_config and its Includes, in sshd's order) and
# these functions find Match blocks that loosen what the global check enforces.


@dataclass(frozen=True)
class ConfigLine:
    """One directive of an sshd config file, with the Match criteria it sits under."""

    path: str
    lineno: int
    keyword: str  # lower-case
    args: tuple[str, ...]
    match: str | None  # "Address 10.0.0.0/8" (joined criteria of enclosing blocks), None: global


def split_directive(line: str) -> tuple[str, tuple[str, ...]] | None:
    """``Keyword value…`` / ``Keyword=value`` → (keyword lower-case, args); None for blank/comment.

    Double quotes group an argument, as in sshd's argv_split."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    m = re.match(r"^([A-Za-z0-9]+)\s*(?:=\s*|\s+|$)(.*)$", text)
    if not m:
        raise SshdParseError(f"not an sshd directive: {text[:120]}")
    args = tuple(a[1:-1] if a.startswith('"') and a.endswith('"') and len(a) > 1 else a
                 for a in re.findall(r'"[^"]*"|\S+', m.group(2)))
    if args and args[0].startswith("#"):
        args = ()
    return m.group(1).lower(), args


_KBD_KEYS = ("kbdinteractiveauthentication", "challengeresponseauthentication")


def loosening_match_lines(lines: Sequence[ConfigLine], global_config: Mapping[str, str],
                          permit_root_login: Sequence[str]) -> list[str]:
    """Match-block directives that allow what the global check forbids, as
    "password login allowed for Match Address 10.0.0.0/8 at /etc/ssh/x.conf:3".

    A block that tightens (``PasswordAuthentication no``) is fine.  For each connection
    sshd keeps the first value obtained, so once a ``Match all`` block (or criteria-less
    context) set a keyword, later blocks cannot change it and are not reported."""
    allowed_root = {v.lower() for v in permit_root_login}
    if "prohibit-password" in allowed_root:
        allowed_root.add("without-password")
    pam = global_config.get("usepam", "no").lower() == "yes"
    global_methods = global_config.get("authenticationmethods", "any")
    # Keywords a Match block set, per block (path, first line): AuthenticationMethods in the
    # same block makes a password a second factor there.
    block_methods: dict[tuple[str, str], str] = {}
    for ln in lines:
        if ln.match is not None and ln.keyword == "authenticationmethods" and ln.args:
            block_methods.setdefault((ln.path, ln.match), " ".join(ln.args))
    fixed_by_match_all: set[str] = set()
    found: list[str] = []
    for ln in lines:
        if ln.match is None or not ln.args:
            continue
        if ln.match.lower() == "all":
            fixed_by_match_all.add(ln.keyword)
            continue
        if ln.keyword in fixed_by_match_all:
            continue
        value = ln.args[0].lower()
        methods = block_methods.get((ln.path, ln.match), global_methods)
        second_factor = _password_is_second_factor(methods)
        what = None
        if ln.keyword == "passwordauthentication" and value == "yes" and not second_factor:
            what = "password login"
        elif ln.keyword == "permitrootlogin" and value not in allowed_root:
            what = f"root login (PermitRootLogin {value})"
        elif ln.keyword == "permitemptypasswords" and value == "yes":
            what = "empty-password login"
        elif ln.keyword in _KBD_KEYS and value == "yes" and pam and not second_factor:
            what = "keyboard-interactive password login (UsePAM yes)"
        if what:
            found.append(f"{what} allowed for Match {ln.match} at {ln.path}:{ln.lineno}")
    return found
