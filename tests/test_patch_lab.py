"""PATCH family against real lab hosts: real apt, dpkg, apt-config, systemctl, os-release.

Each host has its own apt world: ``/etc/apt/sources.list.d`` and ``/var/lib/apt/lists``
are opaque and ``/etc/apt/sources.list`` names only a local ``file:`` repository inside
the host, so apt never reaches the internet.  Installed packages that the tests need
(``lab-dummy`` 1.0, ``unattended-upgrades``, kernel images) are *simulated* by stanzas
added to the host's own ``/var/lib/dpkg/status``; nothing is installed on this machine.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from controlcheck.catalogue import load_catalogue
from controlcheck.inventory import Inventory, Target
from controlcheck.model import Outcome, Status, TargetKind
from controlcheck.probes import registry
from controlcheck.probes.base import CheckContext, EvidenceStore, TargetSession
from controlcheck.transports.local import LocalTransport

if os.geteuid() != 0:
    pytest.skip("the lab needs root (namespaces, mounts)", allow_module_level=True)

try:
    from tests.lab import Host, Lab
except ImportError:  # pragma: no cover - depends on how pytest set up sys.path
    from lab import Host, Lab  # type: ignore[no-redef]

DATA = Path(__file__).parent / "data" / "patch"
REPO = "/var/local/lab-repo"
SUITE = "bookworm-security"
RUNNING_KERNEL = os.uname().release


def _stanza(package: str, version: str, arch: str = "all") -> str:
    return (f"Package: {package}\nStatus: install ok installed\nPriority: optional\n"
            f"Section: misc\nMaintainer: Lab <lab@example.invalid>\nArchitecture: {arch}\n"
            f"Version: {version}\nDescription: controlcheck lab package\n lab only\n\n")


def _dummy_deb(version: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d, "pkg")
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text(
            f"Package: lab-dummy\nVersion: {version}\nArchitecture: all\n"
            "Maintainer: Lab <lab@example.invalid>\nDescription: controlcheck lab package\n")
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root),
                        f"{d}/out.deb"], check=True, capture_output=True)
        return Path(d, "out.deb").read_bytes()


def _setup_repo(h: Host, offered: str | None, date: datetime) -> None:
    """A local security suite offering lab-dummy ``offered`` (None: empty suite)."""
    packages = ""
    if offered:
        deb = _dummy_deb(offered)
        name = f"pool/lab-dummy_{offered}_all.deb"
        h.write_file(f"{REPO}/{name}", deb)
        packages = (f"Package: lab-dummy\nVersion: {offered}\nArchitecture: all\n"
                    "Maintainer: Lab <lab@example.invalid>\n"
                    f"Filename: {name}\nSize: {len(deb)}\n"
                    f"SHA256: {hashlib.sha256(deb).hexdigest()}\n"
                    "Description: controlcheck lab package\n\n")
    rel = "main/binary-amd64/Packages"
    release = ("Origin: Debian\nLabel: Debian-Security\nSuite: bookworm-security\n"
               f"Codename: {SUITE}\nDate: {format_datetime(date, usegmt=True)}\n"
               "Architectures: amd64 all\nComponents: main\nSHA256:\n"
               f" {hashlib.sha256(packages.encode()).hexdigest()} {len(packages)} {rel}\n")
    h.write_file(f"{REPO}/dists/{SUITE}/{rel}", packages)
    h.write_file(f"{REPO}/dists/{SUITE}/Release", release)
    h.make_opaque_dir("/etc/apt/sources.list.d")
    h.make_opaque_dir("/var/lib/apt/lists")
    h.write_file("/var/lib/apt/lists/partial/.keep", "")
    h.write_file("/etc/apt/sources.list", f"deb [trusted=yes] file:{REPO} {SUITE} main\n")


def _dpkg_status(h: Host, *stanzas: str) -> None:
    real = Path("/var/lib/dpkg/status").read_text()
    h.write_file("/var/lib/dpkg/status", real.rstrip("\n") + "\n\n" + "".join(stanzas))


AUTO_CONF = ('APT::Periodic::Update-Package-Lists "1";\n'
             'APT::Periodic::Unattended-Upgrade "1";\n')
UU_CONF = ('Unattended-Upgrade::Origins-Pattern {\n'
           '        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";\n'
           '};\n')


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    now = datetime.now(UTC)
    try:
        pending = lab.add_host("pend")  # security update pending, auto-updates off
        _setup_repo(pending, "1.1", now)
        _dpkg_status(pending, _stanza("lab-dummy", "1.0"),
                     _stanza("linux-image-99.0.0-1-amd64", "99.0.0-1", "amd64"))
        clean = lab.add_host("clean")  # nothing pending, unattended-upgrades configured
        _setup_repo(clean, "1.0", now)
        _dpkg_status(clean, _stanza("lab-dummy", "1.0"), _stanza("unattended-upgrades", "2.9.1"),
                     _stanza(f"linux-image-{RUNNING_KERNEL}", "1.0", "amd64"))
        clean.write_file("/etc/apt/apt.conf.d/20auto-upgrades", AUTO_CONF)
        clean.write_file("/etc/apt/apt.conf.d/50unattended-upgrades", UU_CONF)
        stale = lab.add_host("stale")  # index 30 days old, nothing visible pending; EOL OS
        _setup_repo(stale, None, now - timedelta(days=30))
        stale.write_file("/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\n'
                         'ID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n')
        held = lab.add_host("held")  # security update pending for a package on apt-mark hold
        _setup_repo(held, "1.1", now)
        _dpkg_status(held, _stanza("lab-dummy", "1.0").replace(
            "Status: install ok installed", "Status: hold ok installed"))
        wiped = lab.add_host("wiped")  # lists removed after an update (Docker-style cleanup)
        _setup_repo(wiped, "1.1", now)
        _dpkg_status(wiped, _stanza("lab-dummy", "1.0"))
        wiped.write_file("/var/lib/apt/periodic/update-success-stamp", "")
        lab.start_all()
        for h in (pending, clean, stale, held):
            h.exec(["apt-get", "-qq", "-o", "Acquire::Languages=none", "update"])
        # A stale index: backdate the fetched Release like a host that stopped updating.
        old = (now - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
        stale.exec(["sh", "-c", 'touch -d "$1" /var/lib/apt/lists/*Release', "x", old])
        pending.write_file("/var/run/reboot-required", "*** System restart required ***\n")
        pending.write_file("/var/run/reboot-required.pkgs", "lab-dummy\n")
        yield lab
    finally:
        lab.teardown()


def run_check(h: Host, check_id: str, *, ssh: bool = False,
              **params: Any) -> tuple[Outcome, CheckContext]:
    spec = registry()[check_id]
    control = next(c for c in load_catalogue().controls
                   if any(ref.id == check_id for ref in c.checks))
    if ssh:  # the same probe over real SSH as the unprivileged auditor, no sudo
        from controlcheck.transports.ssh import open_ssh
        from controlcheck.transports.ssh_settings import SSHOptions
        target = Target(h.name, TargetKind.HOST, {"address": h.address, "user": "auditor",
                                                  "key_file": str(h.lab.client_key_path)})
        opts = SSHOptions(ssh_config=None, known_hosts=(h.lab.known_hosts_path,),
                          use_agent=False, connect_timeout=2.0, banner_timeout=2.0,
                          auth_timeout=3.0)
        session = TargetSession(target, lambda: open_ssh(target, opts))
    else:
        target = Target(h.name, TargetKind.HOST, {"name": h.name})
        session = TargetSession(target, lambda: LocalTransport(h.name, prefix=h.exec_prefix()))
    inventory = Inventory(None, Path("."), [target], {}, {}, [], "lab")
    ctx = CheckContext(target=target, params={**spec.defaults(), **params}, control=control,
                       session=session, evidence=EvidenceStore(lambda: datetime.now(UTC)),
                       clock=lambda: datetime.now(UTC), inventory=inventory)
    try:
        return spec.func(ctx), ctx
    finally:
        session.close()


def _capture(ctx: CheckContext, name: str) -> None:
    """Keep what the probe saw, for the unit tests' data (only when asked to)."""
    if os.environ.get("CC_CAPTURE_PATCH"):
        text = "\n\n".join(ctx.evidence.get(e).content.decode() for e in ctx.collected)
        (DATA / name).write_text(text)


def test_security_update_pending_fails(lab: Lab) -> None:
    out, ctx = run_check(lab.host("pend"), "host.patch.security-updates")
    _capture(ctx, "lab-pending-evidence.txt")
    assert out.status == Status.FAIL, out.message
    assert "lab-dummy" in out.message and "1 security updates pending" in out.message
    assert out.facts["pending_security"] == 1


def test_security_update_for_held_package_fails(lab: Lab) -> None:
    # apt-mark hold keeps the update out of a plain dist-upgrade simulation ("kept back",
    # no Inst line): that used to pass as "no security update pending".
    out, _ = run_check(lab.host("held"), "host.patch.security-updates")
    assert out.status == Status.FAIL, out.message
    assert "lab-dummy" in out.message


def test_fresh_stamp_without_any_index_is_error(lab: Lab) -> None:
    # No Release file at all: apt knows no candidate version, so "nothing pending" means
    # nothing.  A fresh update-success-stamp used to make that a pass.
    out, _ = run_check(lab.host("wiped"), "host.patch.security-updates")
    assert out.status == Status.ERROR, out.message
    assert "apt-get update never ran" in out.message


def test_no_update_fresh_index_passes(lab: Lab) -> None:
    out, _ = run_check(lab.host("clean"), "host.patch.security-updates")
    assert out.status == Status.PASS, out.message
    assert "no security update pending" in out.message


def test_stale_index_is_error(lab: Lab) -> None:
    out, _ = run_check(lab.host("stale"), "host.patch.security-updates")
    assert out.status == Status.ERROR, out.message
    assert "30 days old" in out.message or "29 days old" in out.message


def test_auto_updates_absent_fails(lab: Lab) -> None:
    out, _ = run_check(lab.host("pend"), "host.patch.auto-updates")
    assert out.status == Status.FAIL, out.message
    assert "unattended-upgrades is not installed" in out.message


def test_auto_updates_configured_passes(lab: Lab) -> None:
    out, ctx = run_check(lab.host("clean"), "host.patch.auto-updates")
    _capture(ctx, "lab-auto-updates-evidence.txt")
    assert out.status == Status.PASS, out.message
    assert "Debian-Security" in out.message


def test_auto_updates_disabled_in_config_fails(lab: Lab) -> None:
    h = lab.host("stale")
    h.write_file("/etc/apt/apt.conf.d/20auto-upgrades", AUTO_CONF.replace(
        'Unattended-Upgrade "1"', 'Unattended-Upgrade "0"'))
    _dpkg_status(h, _stanza("unattended-upgrades", "2.9.1"))
    out, _ = run_check(h, "host.patch.auto-updates")
    assert out.status == Status.FAIL, out.message
    assert "APT::Periodic::Unattended-Upgrade is '0'" in out.message


def test_reboot_marker_fails(lab: Lab) -> None:
    out, _ = run_check(lab.host("pend"), "host.patch.reboot-required")
    assert out.status == Status.FAIL, out.message
    assert "lab-dummy" in out.message


def test_running_newest_kernel_passes(lab: Lab) -> None:
    out, _ = run_check(lab.host("clean"), "host.patch.reboot-required")
    assert out.status == Status.PASS, out.message
    assert RUNNING_KERNEL in out.message


def test_newer_kernel_installed_fails(lab: Lab) -> None:
    h = lab.host("pend")
    h.remove_file("/var/run/reboot-required")
    out, _ = run_check(h, "host.patch.reboot-required")
    assert out.status == Status.FAIL, out.message
    assert "99.0.0-1-amd64" in out.message


LAB_LIB = "/usr/lib/x86_64-linux-gnu/controlcheck-lab/libz.so.1"


def test_process_running_deleted_library_fails(lab: Lab) -> None:
    # Used to pass: only the kernel and the reboot marker were compared.  A process that
    # loaded a library which an upgrade then replaced keeps running the old code.
    h = lab.host("clean")
    h.write_file(LAB_LIB, Path("/usr/lib/x86_64-linux-gnu/libz.so.1").read_bytes(), 0o644)
    proc = subprocess.Popen(
        [*h.exec_prefix(), "python3", "-c",
         f"import ctypes, sys, time; ctypes.CDLL({LAB_LIB!r}); print('ok', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
        out, _ = run_check(h, "host.patch.reboot-required")
        assert out.status == Status.PASS, out.message  # loaded, not yet deleted
        assert "no process runs a deleted library" in out.message
        h.exec(["rm", "--", LAB_LIB])
        out, _ = run_check(h, "host.patch.reboot-required")
        assert out.status == Status.FAIL, out.message
        assert "1 process(es) still run deleted (upgraded) libraries: python3 (pid " in out.message
        assert f"): {LAB_LIB}; restart them or reboot" in out.message
    finally:
        proc.kill()
        proc.wait()
        if h.exec(["test", "-e", LAB_LIB], check=False).returncode == 0:
            h.exec(["rm", "--", LAB_LIB])


def test_no_kernel_installed_is_skip(lab: Lab) -> None:
    out, _ = run_check(lab.host("stale"), "host.patch.reboot-required")
    assert out.status == Status.SKIP, out.message
    assert "belongs to" in out.message


def test_os_supported_debian12_passes(lab: Lab) -> None:
    out, _ = run_check(lab.host("clean"), "host.patch.os-supported")
    assert out.status == Status.PASS, out.message
    assert "Debian LTS" in out.message


def test_os_eol_fails(lab: Lab) -> None:
    out, _ = run_check(lab.host("stale"), "host.patch.os-supported")
    assert out.status == Status.FAIL, out.message
    assert "2024-06-30" in out.message


def test_unknown_os_is_error(lab: Lab) -> None:
    h = lab.host("pend")
    h.write_file("/etc/os-release", 'ID=plan9\nVERSION_ID="4"\n')
    try:
        out, _ = run_check(h, "host.patch.os-supported")
    finally:  # later tests use this host as Debian again
        h.write_file("/etc/os-release", Path("/usr/lib/os-release").read_text())
    assert out.status == Status.ERROR, out.message
    assert "add it to os_eol.yaml" in out.message


def test_lab_apt_only_uses_local_repo(lab: Lab) -> None:
    # Guard for the lab rule: no host's apt may know an internet source.
    for name in ("pend", "clean", "stale"):
        h = lab.host(name)
        out = h.exec(["apt-cache", "policy"]).stdout
        assert "http://" not in out and "https://" not in out, out
        sources = h.exec(["cat", "/etc/apt/sources.list"]).stdout
        assert sources == f"deb [trusted=yes] file:{REPO} {SUITE} main\n"
        assert h.exec(["ls", "-A", "/etc/apt/sources.list.d"]).stdout == ""



@pytest.mark.parametrize(("host", "status"), [("pend", Status.FAIL), ("clean", Status.PASS)])
def test_security_updates_over_ssh_as_auditor(lab: Lab, host: str, status: Status) -> None:
    out, _ = run_check(lab.host(host), "host.patch.security-updates", ssh=True)
    assert out.status == status, out.message
