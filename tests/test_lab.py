"""Tests of the test lab itself (tests/lab): if these fail, end-to-end results mean nothing.

They bring up real namespaces, overlays, sshd and nginx, so they need root and the Debian
packages from .ci (openssh-server, openssh-client, nftables, nginx, sudo).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

if os.geteuid() != 0:
    pytest.skip("the lab needs root (namespaces, mounts, bridge)", allow_module_level=True)
_missing = [
    t
    for t in ("ip", "unshare", "nsenter", "setpriv", "sshd", "ssh", "nft", "nginx")
    if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()
]
if _missing:
    pytest.skip(f"lab tools missing: {', '.join(_missing)}", allow_module_level=True)

# pytest imports this file as top-level module "test_lab" (tests/ has no __init__.py) or
# as "tests.test_lab" (if it gets one); support both.
try:
    from tests.lab import RUN_DIR, Lab, NginxLab, cleanup_stale
except ImportError:  # pragma: no cover - depends on how pytest set up sys.path
    from lab import RUN_DIR, Lab, NginxLab, cleanup_stale  # type: ignore[no-redef]

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.add_host("h1")
        lab.add_host("h2")
        lab.add_zone_netns("internet")
        lab.start_all()
        yield lab
    finally:
        lab.teardown()


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _banner(address: str, port: int = 22) -> bytes:
    with socket.create_connection((address, port), timeout=5) as sock:
        return sock.recv(256)


def test_sshd_answers_on_each_host_address(lab: Lab) -> None:
    addresses = [h.address for h in lab.hosts.values()]
    assert len(set(addresses)) == 2
    for h in lab.hosts.values():
        assert h.address.startswith(str(lab.network.network_address)[:-1])
        assert _banner(h.address).startswith(b"SSH-2.0-OpenSSH")


def test_each_host_has_its_own_hostname(lab: Lab) -> None:
    for name, h in lab.hosts.items():
        assert h.exec(["hostname"]).stdout.strip() == name
        assert h.exec(["cat", "/etc/hostname"]).stdout.strip() == name


def test_files_are_per_host(lab: Lab) -> None:
    h1, h2 = lab.hosts["h1"], lab.hosts["h2"]
    probe = f"/root/lab-probe-{uuid.uuid4().hex}"
    h1.exec(["sh", "-c", f"echo only-h1 > {probe}"])
    assert h1.exec(["cat", probe]).stdout == "only-h1\n"
    assert h2.exec(["test", "-e", probe], check=False).returncode == 1
    assert not os.path.exists(probe)
    # ...and written from outside while running (goes through the host, not the upper dir)
    etc_probe = f"/etc/lab-probe-{uuid.uuid4().hex}"
    h2.write_file(etc_probe, "only-h2\n", 0o600)
    assert h2.exec(["stat", "-c", "%a %U", etc_probe]).stdout.strip() == "600 root"
    assert h1.exec(["test", "-e", etc_probe], check=False).returncode == 1
    assert not os.path.exists(etc_probe)
    # The host's /run and /tmp are its own too.
    assert h1.exec(["test", "-e", str(RUN_DIR)], check=False).returncode == 1
    assert h1.exec(["cat", "/run/sshd.pid"]).stdout.strip() == "1"


def test_nft_ruleset_is_per_host(lab: Lab) -> None:
    h1, h2 = lab.hosts["h1"], lab.hosts["h2"]
    table = f"lab{uuid.uuid4().hex[:8]}"
    h1.exec(
        ["nft", "-f", "-"],
        input=textwrap.dedent(f"""\
        table inet {table} {{
            chain input {{ type filter hook input priority 0; policy accept; }}
        }}
    """),
    )
    try:
        assert table in h1.exec(["nft", "list", "ruleset"]).stdout
        assert table not in h2.exec(["nft", "list", "ruleset"]).stdout
        real = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        assert table not in real.stdout
    finally:
        h1.exec(["nft", "delete", "table", "inet", table], check=False)


def test_openssh_client_auditor_sudo(lab: Lab) -> None:
    for h in lab.hosts.values():
        argv = [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(lab.client_key_path),
            "-o",
            f"UserKnownHostsFile={lab.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"auditor@{h.address}",
            "sudo -n true && hostname && id -un",
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [h.name, "auditor"]
        assert "unable to resolve host" not in proc.stderr
        # root: key yes (prohibit-password), via the ssh_argv helper
        root = subprocess.run(h.ssh_argv("root") + ["id", "-u"], capture_output=True, text=True, timeout=30)
        assert root.stdout.strip() == "0", root.stderr


def test_known_hosts_has_each_started_host(lab: Lab) -> None:
    lines = lab.known_hosts_path.read_text().splitlines()
    for h in lab.hosts.values():
        assert f"{h.address} {h.host_key_public()}" in lines
    keys = {h.host_key_public().split()[1] for h in lab.hosts.values()}
    assert len(keys) == 2, "hosts must not share host keys"


def test_zone_reaches_hosts_over_the_bridge(lab: Lab) -> None:
    zone = lab.zones["internet"]
    h1 = lab.hosts["h1"]
    code = (
        "import socket,sys;"
        "s=socket.create_connection((sys.argv[1],22),timeout=5);"
        "print(s.getsockname()[0]);print(s.recv(64).decode().strip())"
    )
    out = lab.zone_exec("internet", [sys.executable, "-c", code, h1.address]).stdout.split("\n")
    assert out[0] == zone.address
    assert out[1].startswith("SSH-2.0-")
    # No default route anywhere in the lab: nothing leaves the machine.
    routes = lab.zone_exec("internet", ["ip", "route"]).stdout
    assert "default" not in routes
    assert "default" not in h1.exec(["ip", "route"]).stdout


def test_whiteout_and_opaque_dir_and_restart(lab: Lab) -> None:
    h2 = lab.hosts["h2"]
    h2.stop()
    assert not h2.running
    assert h2.address not in lab.known_hosts_path.read_text()
    h2.remove_file("/etc/debian_version")
    h2.make_opaque_dir("/etc/apt/sources.list.d")
    h2.write_file("/etc/apt/sources.list.d/lab.sources", "# lab\n")
    h2.start()
    assert h2.exec(["test", "-e", "/etc/debian_version"], check=False).returncode == 1
    assert h2.exec(["ls", "-A", "/etc/apt/sources.list.d"]).stdout.split() == ["lab.sources"]
    h1 = lab.hosts["h1"]
    assert h1.exec(["test", "-e", "/etc/debian_version"]).returncode == 0
    assert h2.address in lab.known_hosts_path.read_text()


def test_sshd_failure_reports_log() -> None:
    with Lab() as lab:
        h = lab.add_host("broken")
        h.write_file("/etc/ssh/sshd_config.d/10-bad.conf", "NoSuchKeyword yes\n")
        with pytest.raises(Exception, match="NoSuchKeyword|Bad configuration"):
            h.start(timeout=5)


def test_teardown_leaves_nothing_behind() -> None:
    lab = Lab()
    h = lab.add_host("t1")
    zone = lab.add_zone_netns("internet")
    h.start()
    pid1, tmpdir, bridge = h.pid1, lab.tmpdir, lab.bridge
    lab.zone_exec("internet", ["true"])
    assert {h.netns, zone.netns} <= _netns_names()
    lab.teardown()
    lab.teardown()  # idempotent
    assert not ({h.netns, zone.netns} & _netns_names())
    assert not _link_exists(bridge)
    assert not _link_exists(h.veth) and not _link_exists(zone.veth)
    assert not tmpdir.exists()
    assert not (RUN_DIR / f"{lab.id}.json").exists()
    assert not Path(f"/proc/{pid1}").exists()


def test_cleanup_stale_after_owner_killed(tmp_path: Path) -> None:
    """A run killed with SIGKILL leaves namespaces behind; the next run removes them."""
    script = textwrap.dedent(f"""\
        import json, sys, time
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from lab import Lab
        lab = Lab()
        h = lab.add_host("s1")
        h.start()
        print(json.dumps([lab.id, lab.bridge, h.netns, h.pid1, str(lab.tmpdir)]), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        labid, bridge, netns, pid1, tmpdir = json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # PDEATHSIG took the host down with its owner...
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid1}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not Path(f"/proc/{pid1}").exists()
    # ...but its namespaces, bridge, files and marker stay until cleanup_stale() (which a
    # concurrent test run on this machine may already have done: both outcomes are fine).
    cleanup_stale()
    assert netns not in _netns_names()
    assert not _link_exists(bridge)
    assert not Path(tmpdir).exists()
    assert not (RUN_DIR / f"{labid}.json").exists()


def test_cleanup_stale_spares_live_labs(lab: Lab) -> None:
    assert lab.id not in cleanup_stale()
    assert all(h.running for h in lab.hosts.values())


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_nginx_lab_tls_and_plain_http(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "good.lab")
    with NginxLab(tmp_path) as ng:
        tls13 = ng.add_server("good", cert, key, extra='add_header X-Lab "yes" always;')
        tls12 = ng.add_server("only12", cert, key, protocols="TLSv1.2")
        redirect = ng.add_plain_http("redirect", "https://good.lab/")
        plain = ng.add_plain_http("plain", "hello $world")
        assert len({tls13, tls12, redirect, plain}) == 4
        ng.start()
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        for port, version in ((tls13, "TLSv1.3"), (tls12, "TLSv1.2")):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="good.lab") as tls:
                    assert tls.version() == version
                    tls.sendall(b"GET / HTTP/1.0\r\nHost: good.lab\r\n\r\n")
                    reply = tls.recv(4096)
                    assert reply.startswith(b"HTTP/1.1 200")
        for port, expect in ((redirect, b"301"), (plain, b"hello $world")):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                assert expect in data
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", tls13), timeout=1).close()


def test_paramiko_connects_with_lab_keys(lab: Lab) -> None:
    """controlcheck's own transport is paramiko (no chacha20): the default sshd config
    must leave it a cipher, and the lab key/known_hosts files must be readable by it."""
    paramiko = pytest.importorskip("paramiko")
    h = lab.hosts["h1"]
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            h.address,
            username="auditor",
            key_filename=str(lab.client_key_path),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        _, stdout, _ = client.exec_command("sudo -n id -u")
        assert stdout.read().decode().strip() == "0"
        transport = client.get_transport()
        assert transport is not None
        assert "chacha20" not in transport.remote_cipher
    finally:
        client.close()
