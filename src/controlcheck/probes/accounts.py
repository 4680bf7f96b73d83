"""Pure parsing of account databases and sudoers, and the access-register judge.

Inputs are the texts of ``getent passwd``, ``getent group``, ``/etc/shadow`` and
the sudoers files.  Password hashes never leave ``shadow_states``: callers get
only "empty", "locked", "no password" or "set" per user.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from typing import Any

NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false",
                  "/bin/sync")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    shell: str
    # State of the passwd password field, never the field itself: "shadow" ("x": look in
    # /etc/shadow), else what ``password_state`` says ("empty", "locked", "set", ...).
    passwd_state: str = "shadow"

    @property
    def can_log_in(self) -> bool:
        return bool(self.shell) and self.shell not in NOLOGIN_SHELLS


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


class AccountParseError(ValueError):
    pass


def parse_passwd(text: str) -> list[Account]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue  # NIS compat markers carry no local account
        f = line.split(":")
        if len(f) < 7:
            raise AccountParseError(f"passwd line {lineno} has {len(f)} fields, not 7")
        try:
            out.append(Account(f[0], int(f[2]), int(f[3]), f[6], _passwd_field_state(f[1])))
        except ValueError as exc:
            raise AccountParseError(f"passwd line {lineno}: bad uid/gid") from exc
    return out


def parse_group(text: str) -> list[Group]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        f = line.split(":")
        if len(f) < 4:
            raise AccountParseError(f"group line {lineno} has {len(f)} fields, not 4")
        try:
            out.append(Group(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m)))
        except ValueError as exc:
            raise AccountParseError(f"group line {lineno}: bad gid") from exc
    return out


def password_state(pw: str) -> str:
    """"empty" | "locked" | "no password" | "set" for a password field; never the hash."""
    if pw == "":
        return "empty"
    if pw.startswith("!"):
        return "locked"
    if pw in ("*", "x") or not pw.startswith("$") and len(pw) < 13:
        return "no password"  # no hash can match it
    return "set"


def _passwd_field_state(pw: str) -> str:
    # pam_unix and shadow(5): only "x" (or NIS "##user") sends the lookup to /etc/shadow;
    # any other value, the empty string included, *is* the password hash.
    return "shadow" if pw == "x" or pw.startswith("##") else password_state(pw)


def shadow_states(text: str) -> dict[str, str]:
    """user → "empty" | "locked" | "no password" | "set"; the hash itself is dropped here."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        f = line.split(":")
        if len(f) < 2 or not f[0]:
            continue
        states[f[0]] = password_state(f[1])
    return states


_HARMLESS_PW_FIELDS = frozenset({"", "x", "*", "!", "!!", "!*"})


def redact_password_fields(text: str) -> str:
    """passwd/group text with every password field that may hold a hash replaced."""
    out = []
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 2 and f[1] not in _HARMLESS_PW_FIELDS and not f[1].startswith("##"):
            f[1] = f"[REDACTED: {password_state(f[1])}]"
        out.append(":".join(f))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def extra_uid0(accounts: Iterable[Account]) -> list[str]:
    return sorted({a.name for a in accounts if a.uid == 0 and a.name != "root"})


def empty_password_logins(accounts: Iterable[Account], states: Mapping[str, str]) -> list[str]:
    """Login-capable accounts with an empty password (anyone can log in as them): an empty
    passwd field (shadow is then never consulted), or "x" there and an empty shadow hash."""
    return sorted(a.name for a in accounts if a.can_log_in and (
        a.passwd_state == "empty"
        or a.passwd_state == "shadow" and states.get(a.name) == "empty"))


def admin_group_members(accounts: Sequence[Account], groups: Sequence[Group],
                        admin_groups: Iterable[str]) -> dict[str, list[str]]:
    """user → ["group sudo", "primary group wheel", …] for every admin group."""
    found: dict[str, list[str]] = {}
    wanted = set(admin_groups)
    for g in groups:
        if g.name not in wanted:
            continue
        for m in g.members:
            found.setdefault(m, []).append(f"group {g.name}")
        for a in accounts:
            if a.gid == g.gid:
                found.setdefault(a.name, []).append(f"primary group {g.name}")
    return found


# --------------------------------------------------------------------------- sudoers

_INCLUDE_RE = re.compile(r"^[#@](include|includedir)\s+(.+)$")
_INLINE_COMMENT_RE = re.compile(r"\s#(?!\d)")  # "#1200" is a uid, "# text" a comment
_UID_SPEC_RE = re.compile(r"^#\d+[\s,]")
_ALIAS_RE = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$")


@dataclass(frozen=True)
class SudoGrant:
    principal: str  # "alice", "%admins", "#1001", "ALL"
    line: str  # the rule, for the message


@dataclass(frozen=True)
class SudoersFile:
    grants: tuple[SudoGrant, ...]
    includes: tuple[str, ...]  # files
    includedirs: tuple[str, ...]
    user_aliases: Mapping[str, tuple[str, ...]]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        lines.append((buf + raw).strip())
        buf = ""
    if buf:
        lines.append(buf.strip())
    return lines


def _split_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_sudoers(text: str) -> SudoersFile:
    """User specifications, User_Alias definitions and include directives of one file."""
    grants: list[SudoGrant] = []
    includes: list[str] = []
    includedirs: list[str] = []
    aliases: dict[str, tuple[str, ...]] = {}
    for line in _logical_lines(text):
        if not line:
            continue
        m = _INCLUDE_RE.match(line)
        if m:
            target = shlex.split(m.group(2))[0] if m.group(2).strip() else ""
            (includes if m.group(1) == "include" else includedirs).append(target)
            continue
        # "#1001 ALL=..." names a uid; any other "#" starts a comment.
        if line.startswith("#") and not _UID_SPEC_RE.match(line):
            continue
        line = _INLINE_COMMENT_RE.split(line, maxsplit=1)[0].strip()
        if line.startswith("Defaults"):
            continue
        am = _ALIAS_RE.match(line)
        if am:
            if am.group(1) == "User_Alias":
                for part in am.group(2).split(":"):
                    name, _, members = part.partition("=")
                    aliases[name.strip()] = tuple(_split_list(members))
            continue
        if "=" not in line:
            continue
        # user_list host_list = ...  → the user list is everything before the first
        # whitespace that is followed by the host list; user lists may contain ", ".
        head = line.split("=", 1)[0]
        tokens = re.sub(r"\s*,\s*", ",", head).split()  # sudo allows "alice , bob"
        if len(tokens) < 2:
            continue
        for principal in _split_list(tokens[0]):
            grants.append(SudoGrant(principal, line))
    return SudoersFile(tuple(grants), tuple(includes), tuple(includedirs), aliases)


def includedir_entries(names: Iterable[str]) -> list[str]:
    """Files sudo reads from an @includedir: no '.' in the name, not ending in '~'."""
    return sorted(n for n in names if n and "." not in n and not n.endswith("~"))


def sudo_users(files: Sequence[SudoersFile], accounts: Sequence[Account],
               groups: Sequence[Group]) -> dict[str, list[str]]:
    """user → ["sudoers: <rule>"] for every user a sudoers rule names (root excluded)."""
    aliases: dict[str, tuple[str, ...]] = {}
    for f in files:
        aliases.update(f.user_aliases)
    by_uid = {a.uid: a.name for a in accounts}
    group_by_name = {g.name: g for g in groups}
    found: dict[str, list[str]] = {}

    def add(user: str, why: str) -> None:
        if user != "root" and why not in found.setdefault(user, []):
            found[user].append(why)

    def expand(principal: str, why: str, depth: int = 0) -> None:
        if depth > 8 or principal.startswith("!"):
            return  # negations only remove users; never widen on them
        if principal == "ALL":
            for a in accounts:
                add(a.name, why)
        elif principal in aliases:
            for p in aliases[principal]:
                expand(p, why, depth + 1)
        elif principal.startswith("%:") or principal.startswith("+"):
            add(principal, why)  # non-Unix group / netgroup: cannot be resolved here
        elif principal.startswith("%#"):
            gid = int(principal[2:]) if principal[2:].isdigit() else -1
            for grp in groups:
                if grp.gid == gid:
                    expand(f"%{grp.name}", why, depth + 1)
        elif principal.startswith("%"):
            g = group_by_name.get(principal[1:])
            if g is None:
                return
            for m in g.members:
                add(m, why)
            for a in accounts:
                if a.gid == g.gid:
                    add(a.name, why)
        elif principal.startswith("#"):
            uid = int(principal[1:]) if principal[1:].isdigit() else -1
            add(by_uid.get(uid, principal), why)
        else:
            add(principal, why)

    for f in files:
        for grant in f.grants:
            expand(grant.principal, f"sudoers: {grant.line}")
    return found


# --------------------------------------------------------------------------- register


@dataclass(frozen=True)
class Approval:
    user: str
    approval: str
    hosts: tuple[str, ...]
    expires: date | None


def parse_register(entries: Iterable[Mapping[str, Any]]) -> list[Approval]:
    out = []
    for e in entries:
        exp = e.get("expires")
        if isinstance(exp, str):
            exp = date.fromisoformat(exp)
        out.append(Approval(str(e["user"]), str(e["approval"]),
                            tuple(e.get("hosts") or ("*",)), exp))
    return out


def approval_for(user: str, host_names: Sequence[str], register: Iterable[Approval],
                 today: date) -> tuple[Approval | None, str]:
    """The valid approval of ``user`` on a host known by ``host_names`` (name, groups, tags)."""
    reason = "not in the access register"
    for a in register:
        if a.user != user:
            continue
        if not any(fnmatchcase(n, pat) for pat in a.hosts for n in host_names):
            reason = f"register entry {a.approval} does not cover this host"
            continue
        if a.expires is not None and a.expires < today:
            reason = f"approval {a.approval} expired on {a.expires.isoformat()}"
            continue
        return a, ""
    return None, reason


# --------------------------------------------------------------------------- directory groups

# NSS sources whose "not found" is final: the group does not exist anywhere sudo or login
# could find it.  Any other source (sss, ldap, winbind, extrausers, …) may hold it while
# being unreachable or not enumerable, so "not found" there means "unknown".
LOCAL_NSS_SOURCES = frozenset({"files", "compat", "systemd"})


def sudoers_group_refs(files: Sequence[SudoersFile]) -> list[str]:
    """Unix groups that sudoers rules name, through User_Aliases: "admins", "#1200" (a gid)."""
    aliases: dict[str, tuple[str, ...]] = {}
    for f in files:
        aliases.update(f.user_aliases)
    out: list[str] = []

    def walk(principal: str, depth: int = 0) -> None:
        if depth > 8 or principal.startswith("!"):
            return
        if principal in aliases:
            for p in aliases[principal]:
                walk(p, depth + 1)
        elif principal.startswith("%") and not principal.startswith("%:"):
            if principal[1:] not in out:
                out.append(principal[1:])

    for f in files:
        for grant in f.grants:
            walk(grant.principal)
    return out


def missing_groups(wanted: Iterable[str], groups: Sequence[Group]) -> list[str]:
    """Names (or "#gid") of ``wanted`` that the enumeration (``getent group``) lacks."""
    names = {g.name for g in groups}
    gids = {g.gid for g in groups}
    out: list[str] = []
    for w in wanted:
        known = (int(w[1:]) in gids) if w.startswith("#") and w[1:].isdigit() else w in names
        if not known and w not in out:
            out.append(w)
    return out


def nss_sources(nsswitch: str, database: str = "group") -> list[str]:
    """Sources of one database in nsswitch.conf, without ``[STATUS=action]`` items; glibc's
    built-in default (files) when the database has no line."""
    for line in nsswitch.splitlines():
        line = line.split("#", 1)[0].strip()
        key, sep, rest = line.partition(":")
        if sep and key.strip() == database:
            return [s for s in re.sub(r"\[[^\]]*\]", " ", rest).split()]
    return ["files"]
