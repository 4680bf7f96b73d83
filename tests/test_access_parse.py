"""ACCESS parsers and judges on real captured outputs.

``sshd/*.sshd-T.txt``: ``sshd -T -f X.conf -h <hostkey>`` (OpenSSH 9.2p1, Debian 12)
run as root in a private mount namespace with /run/sshd; ``stock-debian12`` is
Debian's shipped sshd_config without its Include.  ``missing-privsep.stderr.txt``
is what ``sshd -T`` prints when /run/sshd is absent (sshd not running).
``accounts/debian12-base.*``: ``getent passwd/group`` of this machine.
``accounts/lab.*``: a lab host after ``useradd``, ``passwd -d`` (eve, svc),
``chpasswd`` with a throw-away test password (mallory, locked) and ``usermod -L``.
``sudoers/``: Debian's /etc/sudoers and a richer file checked with ``visudo -cf``.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from controlcheck.probes.accounts import (
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
from controlcheck.probes.sshd_config import (
    ConfigLine,
    SshdParseError,
    judge_sshd,
    loosening_match_lines,
    parse_sshd_t,
    split_directive,
)

DATA = Path(__file__).parent / "data" / "access"


def sshd(name: str) -> dict[str, str]:
    return parse_sshd_t((DATA / "sshd" / f"{name}.sshd-T.txt").read_text())


def test_hardened_passes() -> None:
    verdict = judge_sshd(sshd("hardened"), ["no"])
    assert verdict.ok and verdict.notes == ()


def test_weak_fails_on_everything() -> None:
    verdict = judge_sshd(sshd("weak"), ["no"])
    assert verdict.problems == (
        "PermitRootLogin is 'yes' (allowed: no)",
        "PasswordAuthentication is 'yes'",
        "kbdinteractiveauthentication is 'yes' with UsePAM 'yes' (PAM asks for the password)",
        "PermitEmptyPasswords is 'yes'",
    )


def test_stock_debian_fails_root_key_login_and_passwords() -> None:
    verdict = judge_sshd(sshd("stock-debian12"), ["no"])
    assert verdict.problems == ("PermitRootLogin is 'without-password' (allowed: no)",
                                "PasswordAuthentication is 'yes'")


def test_prohibit_password_only_passes_when_allowed() -> None:
    config = sshd("prohibit-password")
    assert config["permitrootlogin"] == "without-password"  # sshd -T prints the old name
    assert not judge_sshd(config, ["no"]).ok
    assert judge_sshd(config, ["no", "prohibit-password"]).ok


def test_forced_commands_only_is_root_login_by_default() -> None:
    assert not judge_sshd(sshd("forced-commands"), ["no"]).ok
    assert judge_sshd(sshd("forced-commands"), ["no", "forced-commands-only"]).ok


def test_kbdinteractive_with_pam_fails() -> None:
    verdict = judge_sshd(sshd("kbdint-pam"), ["no"])
    assert len(verdict.problems) == 1 and "UsePAM 'yes'" in verdict.problems[0]


def test_password_as_second_factor_passes_with_note() -> None:
    verdict = judge_sshd(sshd("mfa-password"), ["no"])
    assert verdict.ok and "publickey,password" in verdict.notes[0]


def test_match_block_only_seen_with_connection_spec() -> None:
    assert judge_sshd(sshd("match-override"), ["no"]).ok
    matched = judge_sshd(sshd("match-override.C-10.9.1.2"), ["no"])
    assert matched.problems == ("PermitRootLogin is 'yes' (allowed: no)",
                                "PasswordAuthentication is 'yes'")


def _lines(name: str) -> list[ConfigLine]:
    """A single-file config as the collector reads it (no Includes in these files)."""
    path = f"/etc/ssh/{name}.conf"
    out: list[ConfigLine] = []
    match = None
    text = (DATA / "sshd" / f"{name}.conf").read_text()
    for n, raw in enumerate(text.splitlines(), 1):
        parsed = split_directive(raw)
        if parsed is None:
            continue
        if parsed[0] == "match":
            match = " ".join(parsed[1])
            continue
        out.append(ConfigLine(path, n, parsed[0], parsed[1], match))
    return out


def test_match_block_that_loosens_is_found_without_connection_spec() -> None:
    # The global sshd -T of this config passes; the Match block reopens passwords and root.
    found = loosening_match_lines(_lines("match-override"), sshd("match-override"), ["no"])
    assert found == [
        "password login allowed for Match Address 10.9.0.0/16 at "
        "/etc/ssh/match-override.conf:5",
        "root login (PermitRootLogin yes) allowed for Match Address 10.9.0.0/16 at "
        "/etc/ssh/match-override.conf:6"]


def test_match_blocks_that_tighten_pass() -> None:
    config = {"usepam": "yes", "permitrootlogin": "no", "passwordauthentication": "no"}
    assert loosening_match_lines(_lines("match-tighten"), config, ["no"]) == []
    # Root login with a key allowed for the jump host only is fine when the site allows it.
    lines = [ConfigLine("/etc/ssh/sshd_config", 9, "permitrootlogin", ("prohibit-password",),
                        "Host jump")]
    assert loosening_match_lines(lines, config, ["no", "prohibit-password"]) == []
    assert loosening_match_lines(lines, config, ["no"]) != []


def test_match_kbdinteractive_empty_and_second_factor() -> None:
    config = {"usepam": "yes", "permitrootlogin": "no", "passwordauthentication": "no"}
    found = loosening_match_lines(_lines("match-kbd-empty"), config, ["no"])
    # PermitEmptyPasswords is fixed by the earlier "Match all" (first value wins); the
    # password of "deploy" is a second factor after publickey.
    assert found == ["keyboard-interactive password login (UsePAM yes) allowed for "
                     "Match Group legacy User bob,carol at /etc/ssh/match-kbd-empty.conf:8"]
    without_pam = loosening_match_lines(_lines("match-kbd-empty"), {"usepam": "no"}, ["no"])
    assert without_pam == []


def test_split_directive_forms() -> None:
    assert split_directive("  # comment") is None
    assert split_directive("") is None
    assert split_directive("PasswordAuthentication=yes") == ("passwordauthentication", ("yes",))
    assert split_directive('Match User "a b" Address 10.0.0.0/8') == (
        "match", ("User", "a b", "Address", "10.0.0.0/8"))
    with pytest.raises(SshdParseError):
        split_directive("!bogus")


def test_sshd_error_text_is_not_a_config() -> None:
    with pytest.raises(SshdParseError):
        parse_sshd_t((DATA / "sshd" / "missing-privsep.stderr.txt").read_text())


# --------------------------------------------------------------------------- accounts


def accounts(name: str):
    base = DATA / "accounts"
    return (parse_passwd((base / f"{name}.passwd").read_text()),
            parse_group((base / f"{name}.group").read_text()))


def test_uid0_only_root_on_real_machine() -> None:
    users, _ = accounts("debian12-base")
    assert extra_uid0(users) == []
    toor = "toor:x:0:0:backdoor:/root:/bin/bash\n"
    text = (DATA / "accounts" / "debian12-base.passwd").read_text() + toor
    assert extra_uid0(parse_passwd(text)) == ["toor"]


def test_shadow_states_never_keep_hashes() -> None:
    text = (DATA / "accounts" / "lab.shadow").read_text()
    states = shadow_states(text)
    assert states["eve"] == "empty" and states["svc"] == "empty"
    assert states["mallory"] == "set" and states["locked"] == "locked"
    assert states["root"] == "no password" and states["sshd"] == "locked"
    assert all("$" not in v for v in states.values())


def test_empty_password_only_counts_login_accounts() -> None:
    users, _ = accounts("lab")
    states = shadow_states((DATA / "accounts" / "lab.shadow").read_text())
    assert empty_password_logins(users, states) == ["eve"]  # svc has nologin


def test_empty_passwd_field_needs_no_shadow_entry() -> None:
    # passwd(5): a field other than "x" is the password itself; empty means none at all,
    # and pam_unix never consults shadow for it (mallory's shadow hash is "set").
    text = (DATA / "accounts" / "lab.passwd").read_text().replace(
        "\nmallory:x:", "\nmallory::")
    states = shadow_states((DATA / "accounts" / "lab.shadow").read_text())
    assert states["mallory"] == "set"
    assert empty_password_logins(parse_passwd(text), states) == ["eve", "mallory"]
    # Shadow unreadable: the passwd field alone still shows it.
    assert empty_password_logins(parse_passwd(text), {}) == ["mallory"]


def test_redact_password_fields_keeps_markers_drops_hashes() -> None:
    shadow_hash = (DATA / "accounts" / "lab.shadow").read_text().split("\nmallory:")[1]
    hashed = shadow_hash.split(":")[0]
    assert hashed.startswith("$")
    text = (DATA / "accounts" / "lab.passwd").read_text().replace(
        "\nmallory:x:", f"\nmallory:{hashed}:")
    red = redact_password_fields(text)
    assert hashed not in red and "mallory:[REDACTED: set]:" in red
    assert "eve:x:1002:1002::/home/eve:/bin/bash" in red  # untouched otherwise
    assert len(red.splitlines()) == len(text.splitlines())


def test_admin_group_members_include_primary_gid() -> None:
    users, groups = accounts("lab")
    assert admin_group_members(users, groups, ["sudo", "wheel", "admin"]) == {
        "auditor": ["group sudo"]}
    # eve's primary group made an admin group: she counts, though not listed as member.
    assert admin_group_members(users, groups, ["eve"]) == {"eve": ["primary group eve"]}


def test_sudoers_debian_default() -> None:
    parsed = parse_sudoers((DATA / "sudoers" / "debian12.sudoers").read_text())
    assert [g.principal for g in parsed.grants] == ["root", "%sudo"]
    assert parsed.includedirs == ("/etc/sudoers.d",)


def test_sudoers_rich() -> None:
    parsed = parse_sudoers((DATA / "sudoers" / "rich.sudoers").read_text())
    assert [g.principal for g in parsed.grants] == [
        "root", "%sudo", "alice", "bob", "OPS", "DBA", "nagios", "#1300"]
    assert parsed.includes == ("/etc/sudoers.local",)
    assert parsed.user_aliases["OPS"] == ("carol", "dave", "%netadmins")
    users, groups = accounts("lab")
    found = sudo_users([parsed], users, groups)
    assert "root" not in found
    assert {"auditor", "alice", "bob", "carol", "dave", "nagios", "#1200", "#1300"} <= set(found)
    assert found["nagios"][0].startswith("sudoers: nagios ALL=(root) NOPASSWD:")


def test_sudoers_all_users_grant_names_everyone() -> None:
    users, groups = accounts("lab")
    found = sudo_users([parse_sudoers("ALL ALL=(ALL) ALL\n")], users, groups)
    assert set(found) == {u.name for u in users} - {"root"}


def test_includedir_rules() -> None:
    assert includedir_entries(["README", "90-lab", "x.dpkg-old", "bak~", ""]) == [
        "90-lab", "README"]


def test_register_approval_hosts_and_expiry() -> None:
    register = parse_register([
        {"user": "alice", "approval": "CHG-1"},
        {"user": "bob", "approval": "CHG-2", "hosts": ["web*"]},
        {"user": "carol", "approval": "CHG-3", "expires": "2024-01-31"},
        {"user": "dave", "approval": "CHG-4", "expires": date(2099, 1, 1), "hosts": ["prod"]},
    ])
    today = date(2025, 6, 1)
    assert approval_for("alice", ["db1"], register, today)[0] is not None
    assert approval_for("bob", ["db1"], register, today)[1] == \
        "register entry CHG-2 does not cover this host"
    assert approval_for("bob", ["web3"], register, today)[0] is not None
    assert approval_for("carol", ["db1"], register, today)[1] == \
        "approval CHG-3 expired on 2024-01-31"
    assert approval_for("dave", ["db1", "prod"], register, today)[0] is not None  # group
    assert approval_for("zed", ["db1"], register, today) == (None, "not in the access register")


def test_sudoers_user_list_with_spaces_around_commas(tmp_path: Path) -> None:
    # sudo itself accepts blanks before a comma in a user list (visudo proves it here);
    # bob used to be dropped, so an unapproved admin could pass.
    text = "alice , bob ,%ops ALL=(ALL) ALL\n"
    (tmp_path / "s").write_text(text)
    check = subprocess.run(["visudo", "-cf", str(tmp_path / "s")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert [g.principal for g in parse_sudoers(text).grants] == ["alice", "bob", "%ops"]


def test_sudoers_group_refs_and_missing_groups() -> None:
    files = [parse_sudoers("User_Alias OPS = %ldapops, bob\nOPS ALL=(ALL) ALL\n"
                           "%sudo ALL=(ALL:ALL) ALL\n%#5001 ALL=(ALL) ALL\n"
                           "%:AD_admins ALL=(ALL) ALL\n")]
    refs = sudoers_group_refs(files)
    assert refs == ["ldapops", "sudo", "#5001"]
    groups = parse_group("sudo:x:27:alice\n")
    assert missing_groups(["sudo", "wheel", *refs], groups) == ["wheel", "ldapops", "#5001"]


def test_nss_sources() -> None:
    assert nss_sources("passwd: files\ngroup:  files systemd [SUCCESS=merge] sss # x\n") == [
        "files", "systemd", "sss"]
    assert nss_sources("passwd: files\n") == ["files"]
