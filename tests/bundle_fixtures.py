"""A real run for the bundle, HTML and OSCAL tests: the real engine, real commands.

The checks here are test-local ``CheckSpec``s added to the registry for the
duration of a test; they run real commands on this machine through the real
``LocalTransport`` and the real ``EvidenceStore``, so the evidence, hashes and
redaction in a bundle are the engine's own — no hand-written reports.  They
cover every status a reporter must render: pass, fail, error, skip, manual,
and waived (through a result hook, the way waivers apply).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from controlcheck.catalogue import Catalogue, CheckRef, Control
from controlcheck.engine import Engine, Run
from controlcheck.inventory import load_inventory
from controlcheck.model import CheckResult, Outcome, Severity, Status, TargetKind
from controlcheck.probes import registry
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.secrets import secret_values
from controlcheck.transports.factory import open_transport

SECRET_ENV = "CC_TEST_BACKUP_PASSWORD"
SECRET_VALUE = "s3cr3t-Backup-Pw-7f1c2a"  # planted in the environment
KEY_SECRET = "PLANTED-KEY-MATERIAL-9b8e7d6c"  # planted in a key file


def _os_release(ctx: CheckContext) -> Outcome:
    res = ctx.run(["cat", "/etc/os-release"])
    uname = ctx.run(["uname", "-srm"])
    # Reading the environment the inventory names: the store must redact it.
    env = ctx.run(["printenv", SECRET_ENV])
    if res.exit_status != 0 or uname.exit_status != 0:
        return Outcome.error(f"{ctx.target.name}: cannot read /etc/os-release")
    name = next((line.split("=", 1)[1].strip('"') for line in res.text.splitlines()
                 if line.startswith("PRETTY_NAME=")), "unknown")
    return Outcome.passed(f"{ctx.target.name} runs {name} ({uname.text.strip()}); "
                          f"password variable set: {env.exit_status == 0}")


def _missing_file(ctx: CheckContext) -> Outcome:
    res = ctx.run(["ls", "-l", "/nonexistent-controlcheck-test-path"])
    if res.exit_status == 0:
        return Outcome.passed(f"{ctx.target.name}: the file exists")
    return Outcome.failed(f"{ctx.target.name}: /nonexistent-controlcheck-test-path is missing; "
                          f"create it <b>now</b> & retry")  # markup must be escaped in HTML


def _undecided(ctx: CheckContext) -> Outcome:
    res = ctx.run(["sh", "-c", "echo 'probe cannot parse this' >&2; exit 7"])
    return Outcome.error(f"{ctx.target.name}: command exited {res.exit_status}; cannot decide")


def _manual(ctx: CheckContext) -> Outcome:
    return Outcome.manual("no attestation given for the access-badge review; add one")


SPECS = (
    CheckSpec("test.bundle.os-release", TargetKind.HOST, _os_release, "never fails"),
    CheckSpec("test.bundle.missing-file", TargetKind.HOST, _missing_file, "fails: file missing"),
    CheckSpec("test.bundle.undecided", TargetKind.HOST, _undecided, "cannot decide"),
    CheckSpec("test.bundle.manual", TargetKind.ORGANISATION, _manual, "needs attestation"),
    CheckSpec("test.bundle.endpoint", TargetKind.ENDPOINT, _manual, "no endpoints: skip"),
    CheckSpec("test.bundle.waived-fail", TargetKind.HOST, _missing_file, "fails, then waived"),
)

WAIVER = {"reason": "file arrives with the Q3 migration", "approver": "CISO",
          "expires": "2099-12-31"}


def waive_test_failure(result: CheckResult) -> CheckResult:
    """A result hook like the waiver module's: this one failing check becomes waived."""
    if result.check == "test.bundle.waived-fail" and result.status == Status.FAIL:
        return replace(result, status=Status.WAIVED, waiver=WAIVER)
    return result


def _control(cid: str, family: str, title: str, checks: list[str], sev: Severity,
             kinds: tuple[TargetKind, ...], fw: dict[str, tuple[str, ...]]) -> Control:
    return Control(id=cid, family=family, title=title,
                   promise_nl="Servers worden regelmatig geüpdatet.",
                   promise_en="Servers are updated regularly.", severity=sev,
                   applies_to=kinds, frameworks=fw,
                   checks=tuple(CheckRef(c, {}) for c in checks))


def test_catalogue() -> Catalogue:
    return Catalogue([
        _control("PATCH-90", "PATCH", "Operating system identified", ["test.bundle.os-release"],
                 Severity.MEDIUM, (TargetKind.HOST,),
                 {"gdpr": ("Art. 32(1)(b)",), "iso27001": ("A.8.8",)}),
        _control("FW-90", "FW", "Required file present", ["test.bundle.missing-file",
                                                          "test.bundle.undecided"],
                 Severity.HIGH, (TargetKind.HOST,),
                 {"iso27001": ("A.8.20",), "nist": ("SC-7",)}),
        _control("PHYS-90", "PHYS", "Badge review attested", ["test.bundle.manual"],
                 Severity.LOW, (TargetKind.ORGANISATION,), {"iso27001": ("A.7.2",)}),
        _control("TLS-90", "TLS", "Endpoints encrypted", ["test.bundle.endpoint"],
                 Severity.HIGH, (TargetKind.ENDPOINT,), {"cis": ("3.10",)}),
        _control("ACCESS-90", "ACCESS", "Undecidable check", ["test.bundle.undecided"],
                 Severity.MEDIUM, (TargetKind.HOST,), {"nist": ("AC-2",)}),
        _control("BACKUP-90", "BACKUP", "Waived failure", ["test.bundle.waived-fail"],
                 Severity.MEDIUM, (TargetKind.HOST,), {"iso27001": ("A.8.13",)}),
    ], digest="0" * 64)


def write_inventory(tmp: Path) -> Path:
    key = tmp / "id_backup"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_SECRET}\n"
                   f"-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    inv = tmp / "inventory.yaml"
    inv.write_text(
        "organisation:\n  name: Example BV\n"
        "hosts:\n"
        "  - name: localhost\n    transport: local\n    sudo: false\n"
        f"    key_file: {key}\n"
        "    backups:\n"
        f"      - {{name: payroll-db, type: restic, repository: {tmp}/repo,\n"
        f"         password_env: {SECRET_ENV}}}\n")
    return inv


@contextmanager
def registered() -> Iterator[None]:
    checks = registry()
    added = [s for s in SPECS if s.id not in checks]
    for s in added:
        checks[s.id] = s
    try:
        yield
    finally:
        for s in added:
            checks.pop(s.id, None)


def real_run(tmp: Path) -> Run:
    """Run the test catalogue with the real engine against this machine."""
    os.environ[SECRET_ENV] = SECRET_VALUE
    inventory = load_inventory(write_inventory(tmp))
    with registered():
        engine = Engine(test_catalogue(), inventory, transport_factory=open_transport,
                        workers=4, timeout=20, secrets=secret_values(inventory),
                        result_hooks=[waive_test_failure])
        return engine.run()
