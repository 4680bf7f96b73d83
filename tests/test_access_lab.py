"""ACCESS host checks against real lab hosts: own sshd config, accounts, sudoers, shadow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from hostlayer_fixtures import (  # noqa: E402
    COMPLIANT_NFT,
    HARDENED_SSHD,
    WEAK_SSHD,
    Lab,
    evidence_text,
    load_nft,
    results,
    run_hosts,
)

from controlcheck.model import Status  # noqa: E402

SSH = "host.access.ssh-config"
ADMINS = "host.access.admins-approved"
UID0 = "host.access.uid0"
REGISTER = [{"user": "auditor", "approval": "LAB-1"}]
TEST_PASSWORD = "lab-test-password-not-secret"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        for name in ("ac-good", "ac-weak", "ac-admin", "ac-uid0", "ac-emptypw", "ac-nosshd",
                     "ac-pwfield", "ac-unshadowed"):
            lab.add_host(name)
        lab.start_all()
        for h in lab.hosts.values():
            h.write_file("/etc/ssh/sshd_config.d/50-hardening.conf",
                         WEAK_SSHD if h.name == "ac-weak" else HARDENED_SSHD)
        good = lab.host("ac-good")
        load_nft(good, COMPLIANT_NFT)
        # A normal user with a real password hash: must be reported as "set", never the hash.
        good.exec(["useradd", "-m", "-s", "/bin/bash", "alice"])
        good.exec(["chpasswd"], input=f"alice:{TEST_PASSWORD}\n")
        admin = lab.host("ac-admin")
        admin.exec(["useradd", "-m", "-s", "/bin/bash", "-G", "sudo", "mallory"])
        admin.exec(["useradd", "-m", "-s", "/bin/bash", "ops"])
        admin.write_file("/etc/sudoers.d/ops", "ops ALL=(root) /usr/bin/systemctl\n", 0o440)
        lab.host("ac-uid0").exec(["useradd", "-o", "-u", "0", "-g", "0", "-M", "toor"])
        emptypw = lab.host("ac-emptypw")
        emptypw.exec(["useradd", "-m", "-s", "/bin/bash", "eve"])
        emptypw.exec(["passwd", "-d", "eve"])
        lab.host("ac-nosshd").remove_file("/usr/sbin/sshd")  # PID 1 keeps running
        # An empty password field in /etc/passwd itself (not "x"): pam_unix never looks in
        # shadow for it, so no password is needed, whatever shadow says (passwd(5)).
        pwfield = lab.host("ac-pwfield")
        pwfield.exec(["useradd", "-m", "-s", "/bin/bash", "frank"])
        passwd = pwfield.read_file("/etc/passwd").decode()
        assert "\nfrank:x:" in passwd
        pwfield.write_file("/etc/passwd", passwd.replace("\nfrank:x:", "\nfrank::"), 0o644)
        # Hashes back in /etc/passwd (pwunconv): getent passwd then prints them.
        unshadowed = lab.host("ac-unshadowed")
        unshadowed.exec(["useradd", "-m", "-s", "/bin/bash", "alice"])
        unshadowed.exec(["chpasswd"], input=f"alice:{TEST_PASSWORD}\n")
        unshadowed.exec(["pwunconv"])
        yield lab
    finally:
        lab.teardown()


def test_ssh_config(lab: Lab, tmp_path: Path) -> None:
    hosts = [(lab.host(n), {}) for n in ("ac-good", "ac-weak", "ac-nosshd")]
    res = results(run_hosts(tmp_path, hosts, [SSH]), SSH)
    good, weak, nosshd = res["ac-good"], res["ac-weak"], res["ac-nosshd"]
    assert good.status == Status.PASS, good.message
    assert weak.status == Status.FAIL, weak.message
    assert "PermitRootLogin is 'yes' (allowed: no); PasswordAuthentication is 'yes'" \
        in weak.message
    assert nosshd.status == Status.SKIP, nosshd.message


def test_ssh_config_match_spec(lab: Lab, tmp_path: Path) -> None:
    host = lab.host("ac-good")
    host.write_file("/etc/ssh/sshd_config.d/60-match.conf",
                    "Match Address 10.9.0.0/16\n    PasswordAuthentication yes\n")
    try:
        catalogue_params = {"match_specs": ["user=root,host=jump,addr=10.9.1.2"]}
        run = _run_with_params(tmp_path, host, catalogue_params)
        r = results(run, SSH)["ac-good"]
        assert r.status == Status.FAIL, r.message
        assert "[-C user=root,host=jump,addr=10.9.1.2] PasswordAuthentication is 'yes'" \
            in r.message
    finally:
        host.remove_file("/etc/ssh/sshd_config.d/60-match.conf")


def test_ssh_config_loosening_match_block_fails(lab: Lab, tmp_path: Path) -> None:
    # Used to pass: the global 'sshd -T' does not apply Match blocks, and the only trace
    # was a note.  The files themselves are read now (sshd_config + its Include glob).
    host = lab.host("ac-good")
    host.write_file("/etc/ssh/sshd_config.d/50-x.conf",
                    "# office network\nMatch Address 10.0.0.0/8\n"
                    "    PasswordAuthentication yes\n    PermitEmptyPasswords yes\n")
    try:
        # Real sshd agrees: for a 10/8 client the block turns passwords on.
        seen = host.exec(["sshd", "-T", "-C", "addr=10.1.2.3,user=x,host=y"]).stdout
        assert "passwordauthentication yes" in seen
        r = results(run_hosts(tmp_path, [(host, {})], [SSH]), SSH)["ac-good"]
        assert r.status == Status.FAIL, r.message
        assert ("password login allowed for Match Address 10.0.0.0/8 at "
                "/etc/ssh/sshd_config.d/50-x.conf:3") in r.message
        assert ("empty-password login allowed for Match Address 10.0.0.0/8 at "
                "/etc/ssh/sshd_config.d/50-x.conf:4") in r.message
    finally:
        host.remove_file("/etc/ssh/sshd_config.d/50-x.conf")


def test_ssh_config_tightening_match_block_passes(lab: Lab, tmp_path: Path) -> None:
    host = lab.host("ac-good")
    host.write_file("/etc/ssh/sshd_config.d/50-x.conf",
                    "Match Address 10.0.0.0/8\n    PasswordAuthentication no\n"
                    "    PermitRootLogin no\nMatch User backup\n"
                    "    KbdInteractiveAuthentication no\n")
    try:
        r = results(run_hosts(tmp_path, [(host, {})], [SSH]), SSH)["ac-good"]
        assert r.status == Status.PASS, r.message
    finally:
        host.remove_file("/etc/ssh/sshd_config.d/50-x.conf")


def test_ssh_config_unreadable_include_is_error(lab: Lab, tmp_path: Path) -> None:
    # The Include glob matches a directory: 'sshd -T' still prints a config, but what that
    # "file" holds cannot be read, so Match blocks in it cannot be ruled out.
    host = lab.host("ac-good")
    host.write_file("/etc/ssh/sshd_config.d/70-dir.conf/x", "")
    try:
        r = results(run_hosts(tmp_path, [(host, {})], [SSH]), SSH)["ac-good"]
        assert r.status == Status.ERROR, r.message
        assert "cannot read the sshd config file /etc/ssh/sshd_config.d/70-dir.conf" \
            in r.message
    finally:
        host.remove_file("/etc/ssh/sshd_config.d/70-dir.conf/x")
        host.remove_file("/etc/ssh/sshd_config.d/70-dir.conf")


def _run_with_params(tmp_path: Path, host, params: dict):  # type: ignore[no-untyped-def]
    """The packaged ACCESS catalogue with parameters set on host.access.ssh-config."""
    import yaml

    from controlcheck.catalogue import default_catalogue_dir, load_catalogue
    from controlcheck.engine import Engine
    from controlcheck.inventory import load_inventory
    from controlcheck.transports.factory import open_transport

    src = yaml.safe_load((default_catalogue_dir() / "access.yaml").read_text())
    for control in src["controls"]:
        for check in control["checks"]:
            if check["id"] == SSH:
                check["params"] = params
    cat_dir = tmp_path / "controls"
    cat_dir.mkdir()
    (cat_dir / "access.yaml").write_text(yaml.safe_dump(src, allow_unicode=True))
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump({"hosts": [{"name": host.name, "transport": "local",
                                              "exec_prefix": host.exec_prefix()}]}))
    catalogue = load_catalogue(cat_dir).select([SSH])
    return Engine(catalogue, load_inventory(inv), transport_factory=open_transport).run()


def test_admins_approved(lab: Lab, tmp_path: Path) -> None:
    hosts = [(lab.host(n), {}) for n in ("ac-good", "ac-admin")]
    res = results(run_hosts(tmp_path, hosts, [ADMINS], register=REGISTER), ADMINS)
    good, admin = res["ac-good"], res["ac-admin"]
    assert good.status == Status.PASS, good.message
    assert "auditor (LAB-1)" in good.message
    assert admin.status == Status.FAIL, admin.message
    assert "2 admin(s) without a valid approval" in admin.message
    assert "mallory (not in the access register; admin via group sudo" in admin.message
    assert "ops (not in the access register; admin via sudoers: ops ALL=(root) " \
        "/usr/bin/systemctl)" in admin.message


def test_admins_empty_register_and_expired(lab: Lab, tmp_path: Path) -> None:
    host = lab.host("ac-good")
    r = results(run_hosts(tmp_path, [(host, {})], [ADMINS]), ADMINS)["ac-good"]
    assert r.status == Status.FAIL and "The access register is empty." in r.message
    expired = [{"user": "auditor", "approval": "LAB-0", "expires": "2020-01-01"}]
    r = results(run_hosts(tmp_path, [(host, {})], [ADMINS], register=expired),
                ADMINS)["ac-good"]
    assert r.status == Status.FAIL and "approval LAB-0 expired on 2020-01-01" in r.message


NSS_WITH_SSS = "passwd: files systemd sss\ngroup: files systemd [SUCCESS=merge] sss\n"


def test_admins_unresolvable_sudoers_group_is_error(lab: Lab, tmp_path: Path) -> None:
    # Used to pass: '%nosuchgroup' is not in 'getent group', so it resolved to nobody.
    # With SSSD in nsswitch (here its module is absent, like an sssd that cannot answer)
    # the group may exist in the directory: its members are unknown.
    host = lab.host("ac-good")
    nsswitch = host.read_file("/etc/nsswitch.conf")
    host.write_file("/etc/sudoers.d/ldap", "%nosuchgroup ALL=(ALL:ALL) ALL\n", 0o440)
    host.write_file("/etc/nsswitch.conf", NSS_WITH_SSS, 0o644)
    try:
        r = results(run_hosts(tmp_path, [(host, {})], [ADMINS], register=REGISTER),
                    ADMINS)["ac-good"]
        assert r.status == Status.ERROR, r.message
        assert ("group nosuchgroup named in sudoers cannot be resolved (nsswitch group: "
                "files systemd sss); its members cannot be checked") in r.message
        # An admin group the host declares is looked up the same way.
        host.remove_file("/etc/sudoers.d/ldap")
        r = results(run_hosts(tmp_path, [(host, {"admin_groups": ["sudo", "ldapadmins"]})],
                              [ADMINS], register=REGISTER), ADMINS)["ac-good"]
        assert r.status == Status.ERROR, r.message
        assert "group ldapadmins named in the host's admin_groups cannot be resolved" \
            in r.message
    finally:
        host.write_file("/etc/nsswitch.conf", nsswitch, 0o644)
        host.remove_file("/etc/sudoers.d/ldap")


def test_admins_missing_group_with_local_nss_only_passes(lab: Lab, tmp_path: Path) -> None:
    # nsswitch "group: files systemd": not found is final, the group does not exist (like
    # '%admin' in Ubuntu's stock sudoers), so nobody is an admin through it.
    host = lab.host("ac-good")
    assert "group:          files systemd" in host.read_file("/etc/nsswitch.conf").decode()
    host.write_file("/etc/sudoers.d/ldap", "%nosuchgroup ALL=(ALL:ALL) ALL\n", 0o440)
    try:
        r = results(run_hosts(tmp_path, [(host, {})], [ADMINS], register=REGISTER),
                    ADMINS)["ac-good"]
        assert r.status == Status.PASS, r.message
        assert "group nosuchgroup named in sudoers does not exist" in r.message
    finally:
        host.remove_file("/etc/sudoers.d/ldap")


def test_uid0_and_empty_passwords(lab: Lab, tmp_path: Path) -> None:
    hosts = [(lab.host(n), {}) for n in ("ac-good", "ac-uid0", "ac-emptypw")]
    run = run_hosts(tmp_path, hosts, [UID0])
    res = results(run, UID0)
    good, uid0, emptypw = res["ac-good"], res["ac-uid0"], res["ac-emptypw"]
    assert good.status == Status.PASS, good.message
    assert uid0.status == Status.FAIL and "UID 0: toor" in uid0.message
    assert emptypw.status == Status.FAIL, emptypw.message
    assert "login-capable accounts with an empty password: eve" in emptypw.message
    # Evidence records states, never hashes.
    text = evidence_text(run, "ac-good")
    assert "alice: set" in text and "auditor: no password" in text
    assert "$y$" not in text and "$6$" not in text
    assert "$y$" in lab.host("ac-good").read_file("/etc/shadow").decode()


def test_empty_password_field_in_passwd_fails(lab: Lab, tmp_path: Path) -> None:
    # Used to pass: only /etc/shadow was consulted, and frank's shadow entry is "!".
    r = results(run_hosts(tmp_path, [(lab.host("ac-pwfield"), {})], [UID0]), UID0)
    assert r["ac-pwfield"].status == Status.FAIL, r["ac-pwfield"].message
    assert "login-capable accounts with an empty password: frank" in r["ac-pwfield"].message


def test_password_hashes_in_passwd_never_reach_evidence(lab: Lab, tmp_path: Path) -> None:
    host = lab.host("ac-unshadowed")
    assert "$y$" in host.read_file("/etc/passwd").decode()
    run = run_hosts(tmp_path, [(host, {})], [UID0, ADMINS], register=REGISTER)
    text = evidence_text(run, "ac-unshadowed")
    assert "alice:" in text  # the account list is still recorded...
    assert "$y$" not in text and "$6$" not in text  # ...without its hashes


def test_unprivileged_is_error_not_pass(lab: Lab, tmp_path: Path) -> None:
    run = run_hosts(tmp_path, [(lab.host("ac-good"), {})], [SSH, ADMINS, UID0],
                    register=REGISTER, prefix_user="auditor")
    for check in (SSH, ADMINS, UID0):
        r = results(run, check)["ac-good"]
        assert r.status == Status.ERROR, (check, r.message)
        assert "sudo: true" in r.message
