"""PATCH family: parsers and judges on real captured output (tests/data/patch/SOURCES.md)."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controlcheck.model import Status
from controlcheck.probes.patch_eol import judge_os_supported, load_table, lookup
from controlcheck.probes.patch_judges import (
    AutoUpdateState,
    RebootState,
    UpdateState,
    judge_auto_updates,
    judge_reboot,
    judge_security_updates,
)
from controlcheck.probes.patch_parsers import (
    PendingUpdate,
    UnrecognisedOutput,
    apt_indexes,
    apt_simulation_complete,
    apt_simulation_upgraded,
    parse_apk_version,
    parse_apt_config,
    parse_apt_simulation,
    parse_dnf_security_list,
    parse_os_release,
    parse_zypper_patches,
)
from controlcheck.probes.patch_restart import DeletedLib, parse_deleted_maps, unreadable_pids
from controlcheck.probes.patch_versions import dpkg_compare, newest, rpm_compare

DATA = Path(__file__).parent / "data" / "patch"
NOW = datetime(2026, 11, 25, 15, 20, tzinfo=UTC)
PARAMS = {"grace_days": 14, "max_index_age_days": 7}


def read(name: str) -> str:
    return (DATA / name).read_text()


# --------------------------------------------------------------------------- apt parsing


def test_apt_simulation_debian12_counts_security_updates() -> None:
    text = read("debian12-apt-get-s-dist-upgrade.txt")
    ups = parse_apt_simulation(text)
    assert apt_simulation_complete(text)
    assert len(ups) == 135
    assert apt_simulation_upgraded(text) == 135  # the collector's cross-check agrees
    assert sum(u.security for u in ups) == 81
    by = {u.package: u for u in ups}
    assert by["liblzma5"].security and by["liblzma5"].installed == "5.4.1-1"
    assert by["liblzma5"].origin == "Debian-Security:12/oldstable-security"
    assert not by["base-files"].security  # point-release update, not security
    # Both archives: the security origin wins.
    assert by["krb5-locales"].security


def test_apt_simulation_unreadable_inst_line_is_noticed() -> None:
    # An Inst line in a shape the parser does not know must not silently shrink the list:
    # the parser names it (and the collector still compares the summary's "N upgraded").
    text = read("debian12-apt-get-s-dist-upgrade.txt").replace(
        "Inst liblzma5 [5.4.1-1] (", "Inst liblzma5 [5.4.1-1] {")
    with pytest.raises(UnrecognisedOutput, match="apt-get: Inst liblzma5 "):
        parse_apt_simulation(text)
    assert apt_simulation_upgraded(text) == 135
    assert apt_simulation_upgraded("E: Unable to locate package\n") is None


def test_apt_simulation_agrees_with_apt_list_upgradable() -> None:
    listed = {}
    for line in read("debian12-apt-list-upgradable.txt").splitlines():
        if "/" in line and "[upgradable from" in line:
            name, _, rest = line.partition("/")
            listed[name] = "-security" in rest.split()[0]
    sim = {u.package: u.security for u in parse_apt_simulation(
        read("debian12-apt-get-s-dist-upgrade.txt"))}
    assert sim == listed


def test_apt_simulation_ubuntu_security_line_and_new_install() -> None:
    text = ("Inst libssl3 [3.0.2-0ubuntu1.10] (3.0.2-0ubuntu1.12 Ubuntu:22.04/jammy-updates, "
            "Ubuntu:22.04/jammy-security [amd64])\n"
            "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian:12.8/stable [amd64])\n")
    ups = parse_apt_simulation(text)
    assert [(u.package, u.security) for u in ups] == [("libssl3", True)]
    assert not apt_simulation_complete(text)


def test_apt_indexes_debian12_security_suite_and_age() -> None:
    idx = apt_indexes(read("debian12-find-release.txt"), read("debian12-grep-release.txt"))
    sec = [i for i in idx if i.security]
    assert [i.fields["Codename"] for i in sec] == ["bookworm-security"]
    assert sec[0].date == datetime(2026, 11, 24, 0, 34, 33, tzinfo=UTC)
    assert sec[0].freshness >= sec[0].date


def test_apt_config_dump_debian12_without_unattended_upgrades() -> None:
    cfg = parse_apt_config(read("debian12-apt-config-dump.txt"))
    assert "APT::Periodic::Unattended-Upgrade" not in cfg
    assert cfg["APT::Architecture"] == ["amd64"]


def test_os_release_debian12() -> None:
    osr = parse_os_release(read("debian12-os-release.txt"))
    assert osr["ID"] == "debian" and osr["VERSION_ID"] == "12"
    assert osr["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"


# --------------------------------------------------------------------------- other managers


def test_dnf_security_list_with_updated_dates() -> None:
    ups = parse_dnf_security_list(read("rocky9-dnf-updateinfo-list-security.txt"),
                                  read("rocky9-dnf-updateinfo-info.txt"))
    assert [(u.package, u.available) for u in ups] == [
        ("binutils", "2.35.2-67.el9_7.1"), ("openssl-libs", "3.5.4-1.el9_8")]
    assert ups[1].issued == datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    assert ups[1].origin == "RLSA-2026:11111 (Important)"


def test_zypper_patches_leap() -> None:
    ups = parse_zypper_patches(read("leap423-zypper-lp-security.txt"))
    assert [u.package for u in ups] == ["openSUSE-2017-1268", "openSUSE-2017-940",
                                        "openSUSE-2018-118"]
    assert all(u.security and u.issued is None for u in ups)


def test_apk_version_alpine() -> None:
    ups = parse_apk_version(read("alpine319-apk-version-l.txt"))
    assert [(u.package, u.installed, u.available) for u in ups] == [
        ("busybox", "1.36.1-r20", "1.36.1-r21"),
        ("musl", "1.2.4_git20230717-r5", "1.2.4_git20230717-r6"),
        ("ssl_client", "1.36.1-r20", "1.36.1-r21")]


def test_dnf5_advisory_list_is_read_not_skipped() -> None:
    # dnf5's table (Name Type Severity Package Issued) used to match no dnf4 row and so
    # read as "nothing pending": a pass with two kernel security updates outstanding.
    ups = parse_dnf_security_list(read("fedora44-dnf5-advisory-list.txt"))
    assert [(u.package, u.available) for u in ups] == [
        ("kernel-core", "7.0.10-201.fc44"), ("kernel-modules-core", "7.0.10-201.fc44")]
    assert ups[0].issued == datetime(2026, 5, 27, 16, 6, 31, tzinfo=UTC)
    assert ups[0].origin == "FEDORA-2026-bc20b091a8 (Important)"


def test_dnf5_narrow_terminal_types_are_read() -> None:
    ups = parse_dnf_security_list(read("fedora40-dnf5-advisory-list-narrow.txt"))
    assert [u.package for u in ups] == ["glib2-debuginfo", "glib2-debugsource"]


@pytest.mark.parametrize(("parser", "text", "manager"), [
    # dnf5 JSON or a 4-column dnf row: not a format the parser knows.
    (parse_dnf_security_list, "RLSA-2026:1 Important/Sec. openssl-3.0.7-1.el9.x86_64 2026-01-01",
     "dnf"),
    (parse_dnf_security_list, '[{"name": "FEDORA-2026-1", "type": "security"}]', "dnf"),
    (parse_dnf_security_list, "RLSA-2026:1 Critical/Security openssl-3.0.7-1.el9.x86_64", "dnf"),
    (parse_zypper_patches, read("leap423-zypper-lp-security.txt").replace(
        "| needed | Security update for subversion",
        "| needed | Security update for subversion | extra"), "zypper"),
    (parse_zypper_patches, "Patch openSUSE-2018-118 (security, important) needed\n", "zypper"),
    (parse_apk_version, "busybox-1.36.1-r20 -> 1.36.1-r21\n", "apk"),
    (parse_apt_simulation, "Inst libc6 [2.36-9] 2.36-9+deb12u9 Debian-Security:12 amd64\n",
     "apt-get"),
])
def test_unparseable_line_raises_not_nothing_pending(parser, text: str,  # type: ignore[no-untyped-def]
                                                      manager: str) -> None:
    with pytest.raises(UnrecognisedOutput, match=f"unrecognised output from {manager}: "):
        parser(text)


def test_known_prose_and_empty_output_still_parse() -> None:
    assert parse_dnf_security_list("") == []
    assert parse_dnf_security_list("Last metadata expiration check: 0:01:02 ago on Mon.\n") == []
    assert parse_zypper_patches("Loading repository data...\nReading installed packages...\n"
                                "No updates found.\n") == []
    assert parse_apk_version("Installed:                                Available:\n") == []
    assert parse_apt_simulation(read("debian12-apt-get-s-dist-upgrade.txt"))


# --------------------------------------------------------------------------- versions


def test_dpkg_compare_matches_dpkg_on_captured_pairs() -> None:
    pairs = [(u.installed or "", u.available) for u in parse_apt_simulation(
        read("debian12-apt-get-s-dist-upgrade.txt"))]
    pairs += [("1.0~rc1", "1.0"), ("1:1.0", "2.0"), ("6.1.0-9-amd64", "6.1.0-18-amd64"),
              ("1.0", "1.0"), ("1.0-1", "1.0"), ("2.30-1+b1", "2.30-1"), ("1a", "1+"),
              ("20230311+deb12u1", "20250419~deb12u2"), ("0.9", "0.10")]
    for a, b in pairs:
        for op, want in (("lt", -1), ("eq", 0), ("gt", 1)):
            real = subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
            assert real == (dpkg_compare(a, b) == want), (a, op, b)


@pytest.mark.parametrize(("a", "b", "want"), [
    # From rpm's own rpmvercmp test table (tests/rpmvercmp.at).
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0.1", "2.0.1a", -1), ("5.5p1", "5.5p10", -1),
    ("xyz10", "xyz10.1", -1), ("1b.fc17", "1.fc17", -1), ("10b2", "10a1", 1),
    ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc1~git123", 1), ("1.0^", "1.0", 1),
    ("1.0^git1", "1.01", -1), ("1.0^", "1.0^git1", -1), ("6.0.rc1", "6.0", 1),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.16.1.el9_4.x86_64", -1),
    ("1:3.0.7-27.el9", "3.0.8-1.el9", 1),
])
def test_rpm_compare(a: str, b: str, want: int) -> None:
    assert rpm_compare(a, b) == want
    assert rpm_compare(b, a) == -want


def test_newest_kernel() -> None:
    assert newest(["6.1.0-9-amd64", "6.1.0-18-amd64", "6.1.0-10-amd64"], "dpkg") == \
        "6.1.0-18-amd64"


# --------------------------------------------------------------------------- judges


def _apt_state(updates: tuple[PendingUpdate, ...], age: timedelta = timedelta(hours=3),
               **kw: object) -> UpdateState:
    return UpdateState("apt", updates, NOW - age, "security Release date", os_id="debian",
                       **kw)  # type: ignore[arg-type]


def test_judge_real_debian12_fails_with_undated_apt_updates() -> None:
    ups = tuple(parse_apt_simulation(read("debian12-apt-get-s-dist-upgrade.txt")))
    out = judge_security_updates("web1", _apt_state(ups), PARAMS, NOW)
    assert out.status == Status.FAIL
    assert "81 security updates pending" in out.message and "does not record" in out.message


def test_judge_no_security_updates_fresh_index_passes() -> None:
    ups = tuple(u for u in parse_apt_simulation(read("debian12-apt-get-s-dist-upgrade.txt"))
                if not u.security)
    out = judge_security_updates("web1", _apt_state(ups), PARAMS, NOW)
    assert out.status == Status.PASS and "54 other" in out.message


def test_judge_stale_index_without_findings_is_error() -> None:
    out = judge_security_updates("web1", _apt_state((), age=timedelta(days=8)), PARAMS, NOW)
    assert out.status == Status.ERROR and "8 days old" in out.message
    unknown = UpdateState("apt", (), None, "no Release files", os_id="debian")
    assert judge_security_updates("web1", unknown, PARAMS, NOW).status == Status.ERROR


def test_judge_missing_security_suite() -> None:
    st = _apt_state((), has_security_source=False)
    assert judge_security_updates("web1", st, PARAMS, NOW).status == Status.FAIL
    st = UpdateState("apt", (), NOW, "x", has_security_source=False, os_id="kali")
    assert judge_security_updates("web1", st, PARAMS, NOW).status == Status.ERROR


def test_judge_dnf_grace_uses_advisory_dates() -> None:
    ups = tuple(parse_dnf_security_list(read("rocky9-dnf-updateinfo-list-security.txt"),
                                        read("rocky9-dnf-updateinfo-info.txt")))
    st = UpdateState("dnf", ups, NOW, "repomd", os_id="rocky")
    assert judge_security_updates("db1", st, PARAMS, datetime(2026, 2, 10, tzinfo=UTC)
                                  ).status == Status.FAIL  # binutils from January is overdue
    early = datetime(2026, 1, 15, tzinfo=UTC)
    st = UpdateState("dnf", ups[:1], early, "repomd", os_id="rocky")
    out = judge_security_updates("db1", st, PARAMS, early)
    assert out.status == Status.PASS and "within the 14-day grace" in out.message


def test_judge_collector_problem_is_error() -> None:
    st = UpdateState("apt", (), NOW, "x", problems=("apt-get -s exited 100: E: broken",))
    assert judge_security_updates("h", st, PARAMS, NOW).status == Status.ERROR


def test_auto_updates_real_debian12_config_fails_when_not_installed() -> None:
    cfg = parse_apt_config(read("debian12-apt-config-dump.txt"))
    st = AutoUpdateState("apt", False, {k: v[-1] for k, v in cfg.items()}, (), {})
    out = judge_auto_updates("h", st)
    assert out.status == Status.FAIL and "not installed" in out.message


def test_auto_updates_apt_variants() -> None:
    good = {"APT::Periodic::Update-Package-Lists": "1", "APT::Periodic::Unattended-Upgrade": "1"}
    origins = ("origin=Debian,codename=${distro_codename}-security,label=Debian-Security",)
    timers = {"apt-daily.timer": "enabled", "apt-daily-upgrade.timer": "enabled"}
    assert judge_auto_updates("h", AutoUpdateState("apt", True, good, origins, timers)
                              ).status == Status.PASS
    off = dict(good, **{"APT::Periodic::Unattended-Upgrade": "0"})
    assert judge_auto_updates("h", AutoUpdateState("apt", True, off, origins, timers)
                              ).status == Status.FAIL
    assert judge_auto_updates("h", AutoUpdateState("apt", True, good, (), timers)
                              ).status == Status.FAIL
    masked = {"apt-daily.timer": "enabled", "apt-daily-upgrade.timer": "masked"}
    assert judge_auto_updates("h", AutoUpdateState("apt", True, good, origins, masked)
                              ).status == Status.FAIL
    unknown = AutoUpdateState("apt", True, good, origins, {}, scheduler_fallback=False)
    assert judge_auto_updates("h", unknown).status == Status.ERROR


def test_auto_updates_dnf_variants() -> None:
    on = {"dnf-automatic-install.timer": "enabled", "dnf-automatic.timer": "disabled"}
    st = AutoUpdateState("dnf", True, {"upgrade_type": "security"}, (), on)
    assert judge_auto_updates("h", st).status == Status.PASS
    dl = {"dnf-automatic-install.timer": "disabled", "dnf-automatic.timer": "enabled"}
    st = AutoUpdateState("dnf", True, {"apply_updates": "no"}, (), dl)
    assert judge_auto_updates("h", st).status == Status.FAIL
    assert judge_auto_updates("h", AutoUpdateState("dnf", False)).status == Status.FAIL
    assert judge_auto_updates("h", AutoUpdateState("zypper", None)).status == Status.ERROR


def test_reboot_judge() -> None:
    run = "6.1.0-9-amd64"
    assert judge_reboot("h", RebootState(run, (run, "6.1.0-18-amd64"), "dpkg", False)
                        ).status == Status.FAIL
    assert judge_reboot("h", RebootState(run, (run,), "dpkg", False)).status == Status.PASS
    assert judge_reboot("h", RebootState(run, (run,), "dpkg", True, "marker")
                        ).status == Status.FAIL
    out = judge_reboot("h", RebootState("6.18.44-fc-v657", (), "dpkg", False, "",
                                        container="docker"))
    assert out.status == Status.SKIP and "container host" in out.message
    assert judge_reboot("h", RebootState("7.0.0-1-amd64", (run,), "dpkg", False)
                        ).status == Status.ERROR
    rh = "5.14.0-427.13.1.el9_4.x86_64"
    assert judge_reboot("h", RebootState(rh, (rh, "5.14.0-427.16.1.el9_4.x86_64"), "rpm",
                                         False)).status == Status.FAIL


# --------------------------------------------------------------------------- os-supported

EOL_PARAMS = {"warn_days": 90, "accept_subscription_support": False}


def _os(id_: str, ver: str) -> dict[str, str]:
    return {"ID": id_, "VERSION_ID": ver, "PRETTY_NAME": f"{id_} {ver}"}


def test_eol_table_validates_and_real_debian12() -> None:
    table = load_table()
    osr = parse_os_release(read("debian12-os-release.txt"))
    out = judge_os_supported("h", osr, lookup(table, osr), EOL_PARAMS, NOW)
    assert out.status == Status.PASS and "2028-06-30 (Debian LTS)" in out.message


@pytest.mark.parametrize(("osr", "when", "status", "text"), [
    (_os("debian", "10"), NOW, Status.FAIL, "2024-06-30"),
    (_os("ubuntu", "20.04"), NOW, Status.FAIL, "Ubuntu Pro ESM runs until 2030-04-30"),
    (_os("ubuntu", "22.04"), NOW, Status.PASS, "until 2027-04-30"),
    (_os("ubuntu", "22.04"), datetime(2027, 3, 1, tzinfo=UTC), Status.PASS, "60 days left"),
    (_os("rocky", "9.4"), NOW, Status.PASS, "2032-05-31"),
    (_os("alpine", "3.19.1"), NOW, Status.FAIL, "2025-11-01"),
    (_os("centos", "7"), NOW, Status.FAIL, "2024-06-30"),
    (_os("gentoo", "2.15"), NOW, Status.ERROR, "add it to os_eol.yaml"),
    (_os("debian", "99"), NOW, Status.ERROR, "not in the end-of-life table"),
    ({"ID": "debian"}, NOW, Status.ERROR, "VERSION_ID=none"),
])
def test_os_supported_cases(osr: dict[str, str], when: datetime, status: Status,
                            text: str) -> None:
    out = judge_os_supported("h", osr, lookup(load_table(), osr), EOL_PARAMS, when)
    assert out.status == status and text in out.message, out.message


def test_os_supported_subscription_accepted() -> None:
    osr = _os("ubuntu", "20.04")
    out = judge_os_supported("h", osr, lookup(load_table(), osr),
                             dict(EOL_PARAMS, accept_subscription_support=True), NOW)
    assert out.status == Status.PASS and "Ubuntu Pro ESM" in out.message


# --------------------------------------------------------------------------- lab captures


def _section(text: str, command: str) -> str:
    """One command's output out of a probe evidence capture (``$ cmd`` blocks)."""
    out = text.split(f"$ {command}\n", 1)[1]
    return out.split("\n$ ", 1)[0]


def test_lab_capture_security_update_without_release_version() -> None:
    text = _section(read("lab-pending-evidence.txt"),
                    "apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    ups = parse_apt_simulation(text)
    assert [(u.package, u.installed, u.available, u.security) for u in ups] == [
        ("lab-dummy", "1.0", "1.1", True)]
    assert ups[0].origin == "Debian-Security:bookworm-security"


def test_lab_capture_unattended_upgrades_config_passes() -> None:
    cap = read("lab-auto-updates-evidence.txt")
    cfg = parse_apt_config(_section(cap, "apt-config dump"))
    assert cfg["Unattended-Upgrade::Origins-Pattern"][-1].endswith("label=Debian-Security")
    timers = dict(zip(["apt-daily.timer", "apt-daily-upgrade.timer"],
                      _section(cap, "systemctl is-enabled apt-daily.timer "
                                    "apt-daily-upgrade.timer").split()[4:6], strict=True))
    st = AutoUpdateState("apt", True, {k: v[-1] for k, v in cfg.items()},
                         tuple(cfg["Unattended-Upgrade::Origins-Pattern"]), timers)
    assert judge_auto_updates("h", st).status == Status.PASS


# --------------------------------------------------------------------------- deleted libraries


def test_deleted_library_maps_lab_capture() -> None:
    lib = "/usr/lib/x86_64-linux-gnu/controlcheck-lab/libz.so.1"
    assert parse_deleted_maps(read("lab-proc-maps-deleted.txt")) == {25: [lib]}
    # Deleted by design, not upgrades: memfd, /dev/shm, /tmp, and non-libraries.
    other = ("/proc/9/maps:7f00-7f01 rw-s 00000000 00:01 5 /memfd:lab (deleted)\n"
             "/proc/9/maps:7f00-7f01 rw-s 00000000 00:1a 6 /dev/shm/x (deleted)\n"
             "/proc/9/maps:7f00-7f01 r-xp 00000000 00:1a 7 /tmp/libx.so (deleted)\n"
             "/proc/9/maps:7f00-7f01 r-xp 00000000 00:1a 8 /usr/lib/locale/C.utf8/LC_CTYPE "
             "(deleted)\n")
    assert parse_deleted_maps(other) == {}
    assert unreadable_pids(read("host-grep-maps-denied.stderr")) == [1]


def test_judge_reboot_deleted_libraries() -> None:
    libs = tuple(DeletedLib(25, "python3", p) for p in ("/usr/lib/a/libz.so.1",
                                                         "/usr/lib/a/libssl.so.3"))
    base = RebootState("6.1.0-1-amd64", ("6.1.0-1-amd64",), "dpkg", False, "no marker")
    out = judge_reboot("h", dataclasses.replace(base, deleted_libs=libs))
    assert out.status == Status.FAIL
    assert ("h: 1 process(es) still run deleted (upgraded) libraries: python3 (pid 25): "
            "/usr/lib/a/libz.so.1, /usr/lib/a/libssl.so.3; restart them or reboot") in out.message
    assert judge_reboot("h", base).status == Status.PASS
    blind = dataclasses.replace(base, libs_none_read=True, libs_unreadable="permission denied")
    out = judge_reboot("h", blind)
    assert out.status == Status.PASS and "process libraries not checked" in out.message
    container = dataclasses.replace(blind, installed_kernels=())
    assert judge_reboot("h", container).status == Status.ERROR
    assert judge_reboot("h", dataclasses.replace(base, installed_kernels=())).status \
        == Status.SKIP
