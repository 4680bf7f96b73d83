"""The SSH transport against real sshd in lab namespaces: one connection, channels,
sudo, deadlines, output caps, host keys, auth, jump hosts, ~/.ssh/config."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if os.geteuid() != 0:
    pytest.skip("the lab needs root", allow_module_level=True)

from fleet_fixtures import NetnsServer, silent_listener  # noqa: E402
from lab import Lab  # noqa: E402

from controlcheck.inventory import Target  # noqa: E402
from controlcheck.model import TargetKind  # noqa: E402
from controlcheck.transports.base import (  # noqa: E402
    AuthError,
    CommandTimeout,
    ConnectError,
    HostKeyError,
)
from controlcheck.transports.ssh import SSHTransport, open_ssh  # noqa: E402
from controlcheck.transports.ssh_settings import SSHOptions  # noqa: E402

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.add_host("good")
        lab.add_host("bastion")
        inner = lab.add_host("inner")
        # Fewer session channels per connection than the transport's own limit.
        lab.add_host("narrow").write_file("/etc/ssh/sshd_config.d/05-narrow.conf",
                                          "MaxSessions 2\n")
        lab.add_zone_netns("hang")
        lab.start_all()
        # inner answers SSH only from the bastion: proves the jump is really used.
        inner.exec(["nft", "-f", "-"], input=(
            "table inet f { chain input { type filter hook input priority 0; policy accept;\n"
            f"  ip saddr {lab.scanner_address} tcp dport 22 drop\n }}\n}}\n"))
        yield lab
    finally:
        lab.teardown()


def _opts(lab: Lab, **kw: object) -> SSHOptions:
    base = dict(ssh_config=None, known_hosts=(lab.known_hosts_path,), use_agent=False,
                connect_timeout=2.0, banner_timeout=2.0, auth_timeout=3.0)
    base.update(kw)
    return SSHOptions(**base)  # type: ignore[arg-type]


def _target(lab: Lab, name: str, **spec: object) -> Target:
    data: dict[str, object] = {"address": lab.hosts[name].address if name in lab.hosts else name,
                               "user": "auditor", "key_file": str(lab.client_key_path)}
    data.update(spec)
    return Target(name, TargetKind.HOST, data)


def _accepted(lab: Lab, host: str) -> int:
    return lab.hosts[host].sshd_log_path.read_text().count("Accepted publickey")


def test_one_connection_many_commands_with_sudo(lab: Lab) -> None:
    before = _accepted(lab, "good")
    tr = open_ssh(_target(lab, "good", sudo=True), _opts(lab))
    try:
        results = [tr.run(["id", "-u"], sudo=True) for _ in range(25)]
        plain = tr.run(["id", "-un"])
        failing = tr.run(["sh", "-c", "echo oops >&2; exit 3"])
        missing = tr.run(["no-such-command-cc"])
    finally:
        tr.close()
    assert {r.text.strip() for r in results} == {"0"}
    assert all(r.sudo and r.command_line.startswith("sudo -n ") for r in results)
    assert plain.text.strip() == "auditor"
    assert (failing.exit_status, failing.err_text.strip()) == (3, "oops")
    assert missing.exit_status == 127
    assert _accepted(lab, "good") - before == 1  # 27 commands, one SSH connection


@pytest.mark.parametrize("host", ["good", "narrow"])
def test_commands_from_many_threads_share_one_connection(lab: Lab, host: str) -> None:
    # A scanner host serves many targets at once: 20 overlapping commands (more than
    # the transport's 8 channels, and than narrow's MaxSessions 2) all answer, each
    # with its own output, on one login.
    before = _accepted(lab, host)
    tr = open_ssh(_target(lab, host), _opts(lab))
    try:
        def one(n: int) -> str:
            return tr.run(["sh", "-c", f"sleep 0.3; echo {n}"], timeout=20).text.strip()

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            got = list(pool.map(one, range(20)))
        elapsed = time.monotonic() - t0
    finally:
        tr.close()
    assert got == [str(n) for n in range(20)]
    assert _accepted(lab, host) - before == 1
    if host == "good":
        assert elapsed < 0.3 * 20 / 2  # really in parallel, not one after another


def test_deadline_covers_whole_command(lab: Lab) -> None:
    tr = open_ssh(_target(lab, "good"), _opts(lab))
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout, match="good: sleep 30 did not finish within 1 s"):
            tr.run(["sleep", "30"], timeout=1)
        assert time.monotonic() - t0 < 2.5
        # A command that trickles output forever still hits the deadline.
        with pytest.raises(CommandTimeout):
            tr.run(["sh", "-c", "while :; do echo x; sleep 0.1; done"], timeout=1)
        assert tr.run(["echo", "still usable"]).text == "still usable\n"
    finally:
        tr.close()


def test_megabytes_are_capped_and_connection_survives(lab: Lab) -> None:
    tr = open_ssh(_target(lab, "good"), _opts(lab))
    try:
        t0 = time.monotonic()
        r = tr.run(["yes"], max_output=1_000_000, timeout=10)
        assert r.truncated and len(r.stdout) == 1_000_000 and r.exit_status == -1
        assert time.monotonic() - t0 < 5
        assert tr.run(["echo", "ok"]).text == "ok\n"
    finally:
        tr.close()


def test_quoting_keeps_arguments_intact(lab: Lab) -> None:
    tr = open_ssh(_target(lab, "good"), _opts(lab))
    try:
        odd = ["a b", "$(id)", "'q'", ";", "*"]
        r = tr.run(["printf", "%s\\n", *odd])
    finally:
        tr.close()
    assert r.text.splitlines() == odd


def test_unknown_host_key_refused_then_trusted_and_recorded(lab: Lab, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError, match="not in known_hosts.*--trust-new-host-keys"):
        open_ssh(_target(lab, "good"), _opts(lab, known_hosts=(kh,)))
    tr = open_ssh(_target(lab, "good"), _opts(lab, known_hosts=(kh,), trust_new_host_keys=True))
    tr.close()
    line = kh.read_text().strip()
    assert line == f"{lab.hosts['good'].address} {lab.hosts['good'].host_key_public().rsplit(' ', 1)[0]}"
    open_ssh(_target(lab, "good"), _opts(lab, known_hosts=(kh,))).close()  # now known


def test_changed_host_key_refused_even_when_trusting(lab: Lab, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    other = lab.hosts["bastion"].host_key_public().rsplit(" ", 1)[0]
    kh.write_text(f"{lab.hosts['good'].address} {other}\n")
    for trust in (False, True):
        with pytest.raises(HostKeyError, match="HOST KEY CHANGED"):
            open_ssh(_target(lab, "good"), _opts(lab, known_hosts=(kh,), trust_new_host_keys=trust))
    assert kh.read_text().count("\n") == 1  # nothing recorded


def test_refused_key_is_auth_error_without_key_material(lab: Lab, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    key.write_bytes(pem)
    with pytest.raises(AuthError) as err:
        open_ssh(_target(lab, "good", key_file=str(key)), _opts(lab))
    assert "refused every key" in str(err.value) and "PRIVATE" not in str(err.value)


def test_unreachable_address_is_connect_error_within_timeout(lab: Lab) -> None:
    ghost = str(lab.network.network_address + 190)
    t0 = time.monotonic()
    with pytest.raises(ConnectError, match="ghost"):
        open_ssh(Target("ghost", TargetKind.HOST, {"address": ghost, "user": "auditor"}),
                 _opts(lab))
    assert time.monotonic() - t0 < 4.5


def test_server_without_banner_times_out(lab: Lab) -> None:
    zone = lab.zones["hang"]
    bound = threading.Event()
    server = NetnsServer(zone.netns, silent_listener(zone.address, 22, bound)).start()
    try:
        assert bound.wait(5)
        t0 = time.monotonic()
        with pytest.raises(ConnectError, match="hang"):
            open_ssh(Target("hang", TargetKind.HOST, {"address": zone.address,
                                                      "user": "auditor"}), _opts(lab))
        assert time.monotonic() - t0 < 6
    finally:
        server.stop()


def test_proxy_jump_through_bastion(lab: Lab) -> None:
    inner = _target(lab, "inner")
    with pytest.raises(ConnectError):  # direct: dropped by inner's firewall
        open_ssh(inner, _opts(lab, connect_timeout=1.0))
    before = _accepted(lab, "bastion")
    jump = f"auditor@{lab.hosts['bastion'].address}"
    # The jump host's key comes from ~/.ssh/config-style resolution: IdentityFile there.
    config = lab.tmpdir / "ssh_config_jump"
    config.write_text(f"Host {lab.hosts['bastion'].address}\n"
                      f"  IdentityFile {lab.client_key_path}\n")
    tr = open_ssh(_target(lab, "inner", proxy_jump=jump), _opts(lab, ssh_config=config))
    try:
        assert tr.run(["hostname"]).text.strip() == "inner"
    finally:
        tr.close()
    assert _accepted(lab, "bastion") - before == 1


def test_ssh_config_supplies_user_port_key(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(f"Host good-alias\n  HostName {lab.hosts['good'].address}\n"
                      f"  User auditor\n  Port 22\n  IdentityFile {lab.client_key_path}\n")
    before = SSHTransport.connections_opened
    tr = open_ssh(Target("good-alias", TargetKind.HOST, {}), _opts(lab, ssh_config=config))
    try:
        assert tr.run(["whoami"]).text.strip() == "auditor"
    finally:
        tr.close()
    assert SSHTransport.connections_opened == before + 1
