"""ACCESS host layer: sshd effective config, approved admins, UID 0 and empty passwords.

Collect through ``ctx.run`` (``sshd -T``, ``getent``, ``cat`` of sudoers and
shadow), judge with the pure functions in ``sshd_config`` and ``accounts``.
``/etc/shadow`` is read with ``record=False``: only "user: empty/locked/set"
is recorded, never a hash.
"""

from __future__ import annotations

import posixpath

from controlcheck.model import Outcome, TargetKind
from controlcheck.probes.accounts import (
    LOCAL_NSS_SOURCES,
    Account,
    AccountParseError,
    Group,
    SudoersFile,
    admin_group_members,
    approval_for,
    empty_password_logins,
    extra_uid0,
    includedir_entries,
    missing_groups,
    nss_sources,
    parse_group,
    parse_passwd,
    parse_register,
    parse_sudoers,
    redact_password_fields,
    shadow_states,
    sudo_users,
    sudoers_group_refs,
)
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.probes.sshd_config import (
    ConfigLine,
    SshdParseError,
    judge_sshd,
    loosening_match_lines,
    parse_sshd_t,
    split_directive,
)
from controlcheck.transports.base import CommandResult

_NOT_FOUND = 127
_SSHD_PATHS = ("sshd", "/usr/sbin/sshd")
SSHD_CONFIG = "/etc/ssh/sshd_config"
_GLOB_CHARS = set("*?[")
_MAX_INCLUDES = 64


class _Unreadable(Exception):
    """A file or command the check needs could not be read; the message says which."""


def _sshd_t(ctx: CheckContext, extra: list[str]) -> CommandResult | None:
    for path in _SSHD_PATHS:
        result = ctx.run([path, "-T", *extra])
        if result.exit_status != _NOT_FOUND:
            return result
    return None


def _include_paths(ctx: CheckContext, pattern: str) -> list[str]:
    """Files an ``Include`` pattern names, sorted like sshd's glob(3); none if it matches none.

    The pattern is an argument to ``find -name``, never part of a shell line."""
    path = pattern if pattern.startswith("/") else posixpath.join("/etc/ssh", pattern)
    directory, base = posixpath.split(path)
    if not _GLOB_CHARS & set(base):
        return [path]
    if _GLOB_CHARS & set(directory):
        raise _Unreadable(f"cannot resolve Include {pattern}: a wildcard in the directory part")
    found = ctx.run(["find", directory, "-mindepth", "1", "-maxdepth", "1", "-name", base])
    if not found.ok:
        if "No such file" in found.err_text:
            return []
        raise _Unreadable(f"cannot list {directory} for Include {pattern}: "
                          f"{found.err_text.strip()[:200]}")
    names = [n for n in found.text.splitlines() if n]
    if not base.startswith("."):  # glob(3) '*' does not match a leading dot; find's does
        names = [n for n in names if not posixpath.basename(n).startswith(".")]
    return sorted(names)


def _config_lines(ctx: CheckContext, path: str, match: str | None, seen: list[str],
                  optional: bool) -> list[ConfigLine]:
    """The directives of ``path`` and its Includes in sshd's reading order.  A Match block
    ends at the end of its file (sshd restores the including file's state)."""
    seen.append(path)
    if len(seen) > _MAX_INCLUDES:
        raise _Unreadable(f"more than {_MAX_INCLUDES} sshd config files (Include loop?)")
    result = ctx.run(["cat", "--", path])
    if not result.ok:
        if optional and "No such file" in result.err_text:
            return []  # sshd ignores an Include that names no file
        why = result.err_text.strip()[:200] or f"exit {result.exit_status}"
        raise _Unreadable(f"cannot read the sshd config file {path}: {why}")
    out: list[ConfigLine] = []
    current = match
    for lineno, raw in enumerate(result.text.splitlines(), 1):
        try:
            parsed = split_directive(raw)
        except SshdParseError as exc:
            raise _Unreadable(f"{path}:{lineno}: {exc}") from exc
        if parsed is None:
            continue
        keyword, args = parsed
        if keyword == "match":
            criteria = " ".join(args)
            current = criteria if match is None else f"{match} {criteria}"
            continue
        if keyword == "include":
            for pattern in args:
                for inc in _include_paths(ctx, pattern):
                    out += _config_lines(ctx, inc, current, seen,
                                         optional=_GLOB_CHARS.isdisjoint(pattern))
            continue
        out.append(ConfigLine(path, lineno, keyword, args, current))
    return out


def check_ssh_config(ctx: CheckContext) -> Outcome:
    name = ctx.target.name
    allowed_root = list(ctx.params["permit_root_login"])
    specs: list[tuple[str, list[str]]] = [("global", [])]
    specs += [(f"-C {s}", ["-C", s]) for s in ctx.params.get("match_specs", [])]
    problems: list[str] = []
    notes: list[str] = []
    global_config: dict[str, str] = {}
    for label, extra in specs:
        result = _sshd_t(ctx, extra)
        if result is None:
            return Outcome.skipped(f"{name}: no sshd installed (no SSH server to check)",
                                   ctx.collected)
        if not result.ok:
            why = " ".join((result.err_text.strip() or result.text.strip()).split())[:300]
            hint = ("/run/sshd exists only while sshd runs: is the SSH server stopped?"
                    if "privilege separation directory" in why else
                    "it needs root: run as root or set 'sudo: true' for this host")
            return Outcome.error(
                f"{name}: 'sshd -T' failed (exit {result.exit_status}): {why}; {hint}",
                ctx.collected)
        try:
            config = parse_sshd_t(result.text)
        except SshdParseError as exc:
            return Outcome.error(f"{name}: {exc}", ctx.collected)
        verdict = judge_sshd(config, allowed_root)
        prefix = "" if label == "global" else f"[{label}] "
        problems += [prefix + p for p in verdict.problems]
        notes += [prefix + n for n in verdict.notes]
        if label == "global":
            global_config = config
    # The global sshd -T ignores Match blocks: read the files for blocks that loosen.
    try:
        lines = _config_lines(ctx, SSHD_CONFIG, None, [], optional=False)
    except _Unreadable as exc:
        return Outcome.error(f"{name}: {exc}; Match blocks cannot be checked (run as root or "
                             "set 'sudo: true' for this host)", ctx.collected)
    problems += loosening_match_lines(lines, global_config, allowed_root)
    tail = f" ({'; '.join(notes)})" if notes else ""
    if problems:
        return Outcome.failed(
            f"{name}: sshd allows root or password login: {'; '.join(problems)}. Set "
            "PermitRootLogin no, PasswordAuthentication no, KbdInteractiveAuthentication no, "
            f"PermitEmptyPasswords no, globally and in every Match block{tail}", ctx.collected,
            problems=problems)
    return Outcome.passed(f"{name}: sshd allows neither root login nor passwords{tail}",
                          ctx.collected)


def _getent(ctx: CheckContext, database: str) -> str:
    # Not recorded as is: an unshadowed passwd/group (pwunconv, old systems) carries
    # password hashes in its second field.  The evidence gets the redacted text.
    result = ctx.run(["getent", database], record=False)
    if not result.ok:
        _record_redacted(ctx, result)
        # getent missing (minimal images): the local files are the database then.
        result = ctx.run(["cat", f"/etc/{database}"], record=False)
        if not result.ok:
            _record_redacted(ctx, result)
            raise _Unreadable(f"cannot read the {database} database (getent and /etc/{database})")
    _record_redacted(ctx, result)
    return result.text


def _record_redacted(ctx: CheckContext, result: CommandResult) -> None:
    body = (f"$ {result.command_line}\n# exit status {result.exit_status} "
            f"(password fields redacted)\n{redact_password_fields(result.text)}")
    if result.stderr:
        body += f"\n# stderr\n{result.err_text}"
    ctx.note(result.command_line, body, kind="command",
             meta={"exit_status": result.exit_status, "argv": list(result.argv)})


def _accounts(ctx: CheckContext) -> tuple[list[Account], list[Group]]:
    try:
        return parse_passwd(_getent(ctx, "passwd")), parse_group(_getent(ctx, "group"))
    except AccountParseError as exc:
        raise _Unreadable(str(exc)) from exc


def _read(ctx: CheckContext, path: str) -> str:
    result = ctx.run(["cat", "--", path])
    if not result.ok:
        why = result.err_text.strip() or f"exit {result.exit_status}"
        raise _Unreadable(f"cannot read {path}: {why}")
    return result.text


def _sudoers(ctx: CheckContext) -> list[SudoersFile]:
    """/etc/sudoers and everything it includes (files and @includedir directories)."""
    files: list[SudoersFile] = []
    queue = ["/etc/sudoers"]
    seen: set[str] = set()
    while queue:
        path = queue.pop(0)
        if path in seen or len(seen) > 128:
            continue
        seen.add(path)
        parsed = parse_sudoers(_read(ctx, path))
        files.append(parsed)
        base = posixpath.dirname(path)
        queue += [posixpath.join(base, p) for p in parsed.includes]
        for d in parsed.includedirs:
            d = posixpath.join(base, d)
            listing = ctx.run(["ls", "-1A", "--", d])
            if not listing.ok:
                if "No such file" in listing.err_text:
                    continue  # sudo ignores a missing includedir
                raise _Unreadable(f"cannot list {d}: {listing.err_text.strip()}")
            queue += [posixpath.join(d, n) for n in includedir_entries(listing.text.splitlines())]
    return files


def _lookup_groups(ctx: CheckContext, wanted: list[str]) -> tuple[list[Group], list[str]]:
    """``getent group NAME`` for each group the enumeration lacks (SSSD/LDAP groups are often
    not enumerable); returns (found groups, names not found)."""
    found: list[Group] = []
    missing: list[str] = []
    for name in wanted:
        key = name[1:] if name.startswith("#") else name  # getent takes a gid as the key
        result = ctx.run(["getent", "group", "--", key], record=False)
        _record_redacted(ctx, result)
        try:
            groups = parse_group(result.text) if result.ok else []
        except AccountParseError:
            groups = []
        if groups:
            found += groups
        else:
            missing.append(name)
    return found, missing


def _group_sources(ctx: CheckContext) -> list[str] | None:
    result = ctx.run(["cat", "--", "/etc/nsswitch.conf"])
    if result.ok:
        return nss_sources(result.text)
    return ["files"] if "No such file" in result.err_text else None


def _unresolved(ctx: CheckContext, missing: list[str], sudoers_refs: list[str],
                host_groups: list[str]) -> tuple[list[str], list[str]]:
    """(undecidable reasons, notes) for groups no source returned.  A name that only the
    catalogue's default admin_groups lists (wheel on Debian) may simply not exist."""
    sources = _group_sources(ctx)
    local = sources is not None and set(sources) <= LOCAL_NSS_SOURCES
    errors: list[str] = []
    notes: list[str] = []
    for g in missing:
        where = ("named in sudoers" if g in sudoers_refs else
                 "named in the host's admin_groups" if g in host_groups else None)
        if where is None:
            continue
        label = f"gid {g[1:]}" if g.startswith("#") else g
        if local:
            notes.append(f"group {label} {where} does not exist (nsswitch group: "
                         f"{' '.join(sources or [])})")
        else:
            via = "nsswitch.conf unreadable" if sources is None else \
                f"nsswitch group: {' '.join(sources)}"
            errors.append(f"group {label} {where} cannot be resolved ({via}); its members "
                          "cannot be checked")
    return errors, notes


def check_admins_approved(ctx: CheckContext) -> Outcome:
    name = ctx.target.name
    host_groups = list(ctx.target.spec.get("admin_groups") or [])
    groups_wanted = host_groups or list(ctx.params["admin_groups"])
    try:
        accounts, groups = _accounts(ctx)
        files = _sudoers(ctx)
        refs = sudoers_group_refs(files)
        extra, missing = _lookup_groups(ctx, missing_groups([*groups_wanted, *refs], groups))
        groups = groups + extra
        undecided, group_notes = _unresolved(ctx, missing, refs, host_groups)
        admins = admin_group_members(accounts, groups, groups_wanted)
        for user, why in sudo_users(files, accounts, groups).items():
            admins.setdefault(user, []).extend(w for w in why if w not in admins.get(user, []))
    except _Unreadable as exc:
        return Outcome.error(f"{name}: {exc}; run as root or set 'sudo: true' for this host",
                             ctx.collected)
    try:
        register = parse_register(ctx.inventory.access_register)
    except (ValueError, KeyError) as exc:
        return Outcome.error(f"{name}: access register entry not understood: {exc}",
                             ctx.collected)
    host_names = [ctx.target.name, *ctx.target.groups, *ctx.target.tags]
    today = ctx.now.date()
    unapproved: list[str] = []
    approved: list[str] = []
    for user in sorted(admins):
        approval, reason = approval_for(user, host_names, register, today)
        if approval is None:
            via = "; ".join(admins[user])
            unapproved.append(f"{user} ({reason}; admin via {via})")
        else:
            approved.append(f"{user} ({approval.approval})")
    groups_text = ", ".join(groups_wanted)
    tail = f" ({'; '.join(group_notes)})" if group_notes else ""
    if unapproved:
        empty = " The access register is empty." if not register else ""
        also = f" Also: {'; '.join(undecided)}." if undecided else ""
        return Outcome.failed(
            f"{name}: {len(unapproved)} admin(s) without a valid approval: "
            f"{'; '.join(unapproved)}.{empty}{also} Remove their admin rights or record the "
            "approval in access_register", ctx.collected,
            unapproved=[u.split(" ")[0] for u in unapproved])
    if undecided:
        return Outcome.error(
            f"{name}: {'; '.join(undecided)}. Make the group resolvable on the host (is "
            "SSSD/LDAP reachable?) or remove it from sudoers/admin_groups", ctx.collected)
    if not admins:
        return Outcome.passed(f"{name}: no admins besides root (groups {groups_text}, "
                              f"sudoers){tail}", ctx.collected)
    return Outcome.passed(f"{name}: every admin is approved: {', '.join(approved)} "
                          f"(groups {groups_text}, sudoers){tail}", ctx.collected)


def check_uid0(ctx: CheckContext) -> Outcome:
    name = ctx.target.name
    try:
        accounts, _ = _accounts(ctx)
    except _Unreadable as exc:
        return Outcome.error(f"{name}: {exc}", ctx.collected)
    uid0 = extra_uid0(accounts)
    problems = []
    if uid0:
        problems.append(f"accounts other than root with UID 0: {', '.join(uid0)}")
    unreadable = ""
    if ctx.params["check_empty_passwords"]:
        shadow = ctx.run(["cat", "--", "/etc/shadow"], record=False)
        states: dict[str, str] = {}
        if shadow.ok:
            states = shadow_states(shadow.text)
            # Redacted record: the state per user, never the hash.
            ctx.note("/etc/shadow password states (hashes not recorded)",
                     "".join(f"{u}: {s}\n" for u, s in sorted(states.items())))
        else:
            unreadable = (f"cannot read /etc/shadow ({shadow.err_text.strip()[:120]}) to look "
                          "for empty passwords")
        # An empty passwd field counts even when shadow is unreadable: it needs no shadow.
        empty = empty_password_logins(accounts, states)
        if empty:
            problems.append("login-capable accounts with an empty password: "
                            + ", ".join(empty))
    if problems:
        extra = f" (also: {unreadable})" if unreadable else ""
        return Outcome.failed(
            f"{name}: {'; '.join(problems)}{extra}. Give each account its own UID and lock or "
            "set a password on every login account", ctx.collected, uid0=uid0)
    if unreadable:
        return Outcome.error(f"{name}: no extra UID 0 account, but {unreadable}; run as root "
                             "or set 'sudo: true' for this host", ctx.collected)
    checked = " and no login account has an empty password" \
        if ctx.params["check_empty_passwords"] else ""
    return Outcome.passed(f"{name}: only root has UID 0{checked}", ctx.collected)


CHECKS = (
    CheckSpec('host.access.ssh-config', TargetKind.HOST, check_ssh_config,
              'root login, password or empty-password login allowed (sshd -T)',
              {"permit_root_login": {
                  "type": "array", "items": {"enum": ["no", "prohibit-password",
                                                      "without-password",
                                                      "forced-commands-only", "yes"]},
                  "default": ["no"],
                  "description": "PermitRootLogin values that pass"},
               "match_specs": {
                   "type": "array", "items": {"type": "string"}, "default": [],
                   "description": "connection specs for 'sshd -T -C' (e.g. "
                                  "'user=root,host=jump,addr=10.0.0.5') to evaluate Match blocks"}}),
    CheckSpec('host.access.admins-approved', TargetKind.HOST, check_admins_approved,
              'an admin-group member is not in the approved access register',
              {"admin_groups": {
                  "type": "array", "items": {"type": "string"},
                  "default": ["sudo", "wheel", "admin"],
                  "description": "admin groups when the host sets no admin_groups"}}),
    CheckSpec('host.access.uid0', TargetKind.HOST, check_uid0,
              'an account other than root has UID 0',
              {"check_empty_passwords": {
                  "type": "boolean", "default": True,
                  "description": "also fail on login accounts with an empty password hash"}}),
)
