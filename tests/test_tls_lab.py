"""TLS family against real servers: nginx (one server block per case), tlslite-ng (3DES,
RC4, SSLv3), misbehaving sockets, and sshd — all on 127.0.0.1, started here.

One engine run covers every case concurrently (as ``controlcheck tls`` would); each case
asserts the exact status of every check id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlcheck.catalogue import Catalogue, load_catalogue
from controlcheck.engine import Engine
from controlcheck.inventory import Inventory, Target
from controlcheck.model import Status, TargetKind
from controlcheck.transports.factory import open_transport

sys.path.insert(0, str(Path(__file__).parent))
from conftest import SHARED_SCHEMAS
from tls_fixtures import CHECK_IDS, BadServer, closed_port, start_lab  # noqa: E402

SCHEMAS = SHARED_SCHEMAS
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the lab needs root")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = start_lab(tmp_path_factory.mktemp("tlslab"))
    yield lab
    lab.stop()


def _tls_catalogue(only_kind: TargetKind = TargetKind.ENDPOINT) -> Catalogue:
    full = load_catalogue()
    return Catalogue([c for c in full.controls if c.family == "TLS"
                      and only_kind in c.applies_to], full.digest, full.files)


def _run(targets: list[Target], timeout: float = 5.0,
         kind: TargetKind = TargetKind.ENDPOINT):
    inv = Inventory(None, Path.cwd(), targets, {}, {}, [], "test")
    return Engine(_tls_catalogue(kind), inv, transport_factory=open_transport, workers=32,
                  timeout=timeout).run()


@pytest.fixture(scope="module")
def lab_run(lab):
    targets = [Target(c.name, TargetKind.ENDPOINT,
                      {"name": c.name, "url": c.url, "servername": c.servername,
                       "ca_file": str(lab.ca_file)}) for c in lab.cases]
    t0 = time.monotonic()
    run = _run(targets)
    return run, time.monotonic() - t0


CASES = ["good", "expired", "notyet", "expiring", "selfsigned", "unknownroot", "wronghost",
         "nointermediate", "rsa1024", "sha1", "tls10", "staticrsa", "nohsts", "shorthsts",
         "ecdsa", "tls13only", "http200", "http301", "tl-3des", "tl-rc4", "tl-ssl3"]


@pytest.mark.parametrize("case", CASES)
def test_case_exact_statuses(lab, lab_run, case: str) -> None:
    run, _ = lab_run
    got = {r.check: r.status.value for r in run.results if r.target == case}
    assert got == lab.case(case).expect, [
        (r.check, r.status.value, r.message) for r in run.results if r.target == case]


def test_culprits_and_versions_are_named(lab_run) -> None:
    run, _ = lab_run
    by = {(r.target, r.check): r for r in run.results}
    assert "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA" in by[("tl-3des", "tls.cipher-suites")].message
    assert "RC4" in by[("tl-rc4", "tls.cipher-suites")].message
    assert by[("tl-ssl3", "tls.protocol-versions")].facts["versions_accepted"] == \
        ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"]
    # TLS 1.2 is not probed there: 1.3 is seen and 1.2 cannot change the verdict.
    assert by[("tls10", "tls.protocol-versions")].facts["versions_accepted"] == \
        ["TLSv1", "TLSv1.1", "TLSv1.3"]
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in by[("staticrsa", "tls.cipher-suites")].message
    assert by[("good", "tls.cipher-suites")].facts["key_exchange_group"] == "x25519"
    assert by[("good", "tls.protocol-versions")].facts["tls13"] is True
    assert by[("tls13only", "tls.protocol-versions")].facts["versions_accepted"] == ["TLSv1.3"]
    assert "self-signed" in by[("selfsigned", "tls.certificate-trust")].message
    assert "unable to get local issuer" in by[("nointermediate", "tls.certificate-trust")].message


def test_few_handshakes(lab_run) -> None:
    run, _ = lab_run
    most = {}
    for r in run.results:
        most[r.target] = max(most.get(r.target, 0), int(r.facts.get("handshakes", 0)))
    assert most["good"] <= 5
    assert most["tls13only"] <= 5
    assert max(most.values()) <= 12


def test_evidence_has_chain_and_http(lab_run) -> None:
    run, _ = lab_run
    trust = next(r for r in run.results if r.target == "good"
                 and r.check == "tls.certificate-trust")
    kinds = {run.evidence.get(e).kind for e in trust.evidence}
    assert {"tls-handshake", "certificate-chain"} <= kinds
    chain = next(run.evidence.get(e) for e in trust.evidence
                 if run.evidence.get(e).kind == "certificate-chain")
    assert chain.content.count(b"BEGIN CERTIFICATE") == 2
    assert b"SHA-256 fingerprint" in chain.content
    hsts = next(r for r in run.results if r.target == "good" and r.check == "http.hsts")
    http = run.evidence.get(hsts.evidence[0])
    assert http.kind == "http" and b"Strict-Transport-Security" in http.content


def test_other_profiles(lab) -> None:
    """ncsc-nl: static RSA is phase-out (pass, reported); modern: TLS 1.2 is not allowed."""
    def one(case: str, profile: str) -> dict[str, str]:
        c = lab.case(case)
        t = Target(c.name, TargetKind.ENDPOINT, {"name": c.name, "url": c.url,
                                                 "servername": c.servername,
                                                 "ca_file": str(lab.ca_file)})
        cat = _tls_catalogue()
        from dataclasses import replace
        cat = Catalogue([replace(ctl, checks=tuple(
            replace(ref, params={**ref.params, "profile": profile})
            if "profile" in ref.params else ref for ref in ctl.checks))
            for ctl in cat.controls], cat.digest, cat.files)
        inv = Inventory(None, Path.cwd(), [t], {}, {}, [], "test")
        run = Engine(cat, inv, transport_factory=open_transport, timeout=5).run()
        return {r.check: r.status.value for r in run.results}

    ncsc = one("staticrsa", "ncsc-nl")
    assert ncsc["tls.cipher-suites"] == "pass"
    assert one("tls10", "ncsc-nl-2025")["tls.protocol-versions"] == "fail"
    modern = one("good", "mozilla-modern")
    assert modern["tls.protocol-versions"] == "fail"
    assert modern["tls.cipher-suites"] == "fail"  # its TLS 1.2 suites are outside "modern"
    assert one("tls13only", "mozilla-modern")["tls.protocol-versions"] == "pass"
    assert one("good", "mozilla-intermediate-5.7")["tls.cipher-suites"] == "pass"


def test_unreachable_hanging_and_garbage_endpoints_error_within_timeout() -> None:
    hang, garbage = BadServer("hang"), BadServer("garbage")
    try:
        targets = [
            Target("closed", TargetKind.ENDPOINT, {"name": "closed", "host": "127.0.0.1",
                                                   "port": closed_port()}),
            Target("hang", TargetKind.ENDPOINT, {"name": "hang", "host": "127.0.0.1",
                                                 "port": hang.port}),
            Target("garbage", TargetKind.ENDPOINT, {"name": "garbage", "host": "127.0.0.1",
                                                    "port": garbage.port}),
        ]
        t0 = time.monotonic()
        run = _run(targets, timeout=1.5)
        elapsed = time.monotonic() - t0
    finally:
        hang.stop()
        garbage.stop()
    assert elapsed < 4.0
    for name, reason in (("closed", "refused"), ("hang", "1.5 s"), ("garbage", "")):
        rows = {r.check: r for r in run.results if r.target == name}
        for cid in CHECK_IDS:
            expected = "skip" if cid in ("http.https-redirect", "http.hsts") else "error"
            assert rows[cid].status.value == expected, (name, cid, rows[cid].message)
        assert reason in rows["tls.protocol-versions"].message


def _sshd(tmp: Path, name: str, extra: str) -> tuple[subprocess.Popen[bytes], int]:
    from tls_fixtures import closed_port as free

    d = tmp / name
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "hk")],
                   check=True)
    port = free()
    (d / "cfg").write_text(f"HostKey {d}/hk\nListenAddress 127.0.0.1:{port}\nPidFile none\n"
                           f"UsePAM no\n{extra}")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(d / "cfg"), "-E", str(d / "log")])
    for _ in range(100):
        try:
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    return proc, port


def test_ssh_algorithms_real_sshd(tmp_path: Path) -> None:
    hard, hard_port = _sshd(tmp_path, "hard",
                            "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com\n")
    weak, weak_port = _sshd(tmp_path, "weak", "Ciphers +3des-cbc\n"
                            "KexAlgorithms +diffie-hellman-group1-sha1\n")
    stock, stock_port = _sshd(tmp_path, "stock", "")
    try:
        hosts = [Target(n, TargetKind.HOST, {"name": n, "transport": "local",
                                             "address": "127.0.0.1", "port": p})
                 for n, p in (("hard", hard_port), ("weak", weak_port), ("stock", stock_port),
                              ("none", closed_port()))]
        run = _run(hosts, kind=TargetKind.HOST)
    finally:
        for p in (hard, weak, stock):
            p.kill()
            p.wait()
    got = {r.target: r for r in run.results if r.check == "ssh.algorithms"}
    assert got["hard"].status == Status.PASS, got["hard"].message
    assert got["weak"].status == Status.FAIL
    assert "3des-cbc" in got["weak"].message and "diffie-hellman-group1-sha1" in got["weak"].message
    assert got["stock"].status == Status.FAIL  # Debian 12 default still offers hmac-sha1/umac-64
    assert "hmac-sha1" in got["stock"].message
    assert got["none"].status == Status.SKIP and "no SSH server" in got["none"].message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlcheck", "tls", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_gate_exit_codes_junit_and_sarif(lab, tmp_path: Path) -> None:
    import xmlschema
    from jsonschema import Draft4Validator

    good = lab.case("good")
    ok = _cli(good.url, "--servername", good.servername, "--ca-file", str(lab.ca_file))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS  tls.cipher-suites" in ok.stdout

    exp = lab.case("expiring")
    junit = tmp_path / "tls.xml"
    bad = _cli(exp.url, "--servername", exp.servername, "--ca-file", str(lab.ca_file),
               "--format", "junit", "--output", str(junit))
    assert bad.returncode == 1
    xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd")).validate(str(junit))
    assert junit.read_text().count("<failure") == 1

    # --min-days 2 lets a 5-day certificate pass
    relaxed = _cli(exp.url, "--servername", exp.servername, "--ca-file", str(lab.ca_file),
                   "--min-days", "2")
    assert relaxed.returncode == 0, relaxed.stdout

    sarif = tmp_path / "tls.sarif"
    both = _cli(good.url, lab.case("tl-3des").url, "--ca-file", str(lab.ca_file),
                "--servername", "legacy.lab.test", "--format", "sarif", "--output", str(sarif))
    assert both.returncode == 1
    doc = json.loads(sarif.read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    errors = list(Draft4Validator(schema).iter_errors(doc))
    assert not errors, errors[0].message
    rules = {r["ruleId"]: r for r in doc["runs"][0]["results"]
             if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
             == lab.case("tl-3des").url}
    assert rules["tls.cipher-suites"]["kind"] == "fail"
    assert rules["tls.cipher-suites"]["level"] == "error"

    closed = _cli(f"127.0.0.1:{closed_port()}", "--timeout", "1")
    assert closed.returncode == 3
    assert _cli("not a target!").returncode == 2
    assert _cli("127.0.0.1", "--profile", "no-such-profile").returncode == 2


def test_inventory_endpoints_with_run(lab, tmp_path: Path) -> None:
    good, red = lab.case("good"), lab.case("http301")
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "endpoints:\n"
        f"  - name: shop\n    url: {good.url}\n    servername: {good.servername}\n"
        f"    ca_file: {lab.ca_file}\n    http_url: {red.url}\n")
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "controlcheck", "run", "-i", str(inv), "--only",
                        "TLS-01", "--only", "TLS-02", "--only", "TLS-03", "-o", str(out), "-q"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {r["check"]: r["status"] for r in json.loads(out.read_text())["results"]}
    assert rows == {cid: "pass" for cid in CHECK_IDS}


def test_version_is_fast() -> None:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "controlcheck", "--version"], check=True,
                   capture_output=True)
    assert time.monotonic() - t0 < 0.3
