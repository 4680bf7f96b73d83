"""Engine: one row per control × check × target, whatever happens to a probe or host."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from conftest import validate_report

from controlcheck.catalogue import load_catalogue
from controlcheck.engine import Engine
from controlcheck.inventory import Target, load_inventory
from controlcheck.model import Outcome, Status, TargetKind
from controlcheck.probes.base import CheckContext, CheckSpec
from controlcheck.reporters.json_report import build_report
from controlcheck.transports.base import ConnectError, Transport
from controlcheck.transports.local import LocalTransport
from controlcheck.verdict import exit_code

CATALOGUE = """\
family: PATCH
title: test
controls:
  - id: PATCH-01
    title: uname answers
    promise: {nl: "de servers worden regelmatig geüpdatet.", en: "updated"}
    severity: high
    applies_to: [host]
    frameworks: {gdpr: ["Art. 32(1)(b)"], iso27001: ["A.8.8"], cis: ["7.3"], nist: ["SI-2"]}
    checks:
      - id: t.uname
      - id: t.crash
  - id: PATCH-02
    title: endpoints
    promise: {nl: "x", en: "x"}
    severity: low
    applies_to: [endpoint]
    frameworks: {gdpr: [], iso27001: [], cis: [], nist: []}
    checks:
      - id: t.endpoint
"""

INVENTORY = """\
hosts:
  - {name: good, transport: local}
  - {name: down, transport: ssh, address: 127.0.0.1}
  - {name: other, transport: local}
"""


def uname(ctx: CheckContext) -> Outcome:
    r = ctx.run(["uname", "-s"])
    return Outcome.passed(f"kernel {r.text.strip()}") if r.ok else Outcome.failed("no uname")


def crash(ctx: CheckContext) -> Outcome:
    raise ValueError("parser choked on line 3")


def endpoint(ctx: CheckContext) -> Outcome:
    return Outcome.passed("never runs: no endpoints")


CHECKS = {
    "t.uname": CheckSpec("t.uname", TargetKind.HOST, uname, "uname fails"),
    "t.crash": CheckSpec("t.crash", TargetKind.HOST, crash, "always crashes"),
    "t.endpoint": CheckSpec("t.endpoint", TargetKind.ENDPOINT, endpoint, "n/a"),
}


def factory(target: Target) -> Transport:
    if target.name == "down":
        raise ConnectError("down: connection refused on 127.0.0.1:1")
    return LocalTransport(target.name)


def _setup(tmp_path: Path) -> tuple:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "patch.yaml").write_text(CATALOGUE)
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load_catalogue(tmp_path / "c", CHECKS), load_inventory(tmp_path / "inv.yaml")


def test_every_pair_has_exactly_one_result_and_failures_are_errors(tmp_path: Path) -> None:
    catalogue, inventory = _setup(tmp_path)
    run = Engine(catalogue, inventory, transport_factory=factory, checks=CHECKS).run()

    rows = {(r.check, r.target): r for r in run.results}
    assert len(rows) == len(run.results) == 7  # 2 checks × 3 hosts + 1 endpoint row
    assert rows[("t.uname", "good")].status == Status.PASS
    assert rows[("t.uname", "other")].status == Status.PASS
    down = rows[("t.uname", "down")]
    assert down.status == Status.ERROR and "connection refused" in down.message
    crashed = rows[("t.crash", "good")]
    assert crashed.status == Status.ERROR
    assert "ValueError: parser choked on line 3" in crashed.message
    assert "test_engine.py" in crashed.message
    skipped = rows[("t.endpoint", "-")]
    assert skipped.status == Status.SKIP and "endpoints:" in skipped.message
    assert exit_code(run.results) == 3  # errors, nothing failed
    report = build_report(run)
    validate_report(report)
    # evidence of the uname command is recorded and referenced
    ev_ids = {e["id"] for e in report["evidence"]}
    assert set(rows[("t.uname", "good")].evidence) <= ev_ids
    assert any("uname -s" in e["content"] for e in report["evidence"])


def test_a_failed_connect_is_not_retried_per_check(tmp_path: Path) -> None:
    catalogue, inventory = _setup(tmp_path)
    attempts: list[str] = []

    def counting(target: Target) -> Transport:
        attempts.append(target.name)
        return factory(target)

    Engine(catalogue, inventory, transport_factory=counting, checks=CHECKS).run()
    assert attempts.count("down") == 1
    assert attempts.count("good") == 1  # one transport per host for all its checks


def test_interrupt_gives_a_partial_run_with_every_row(tmp_path: Path) -> None:
    catalogue, inventory = _setup(tmp_path)
    started = threading.Event()

    def slow(ctx: CheckContext) -> Outcome:
        if ctx.target.name == "good":
            started.set()
            signal.raise_signal(signal.SIGINT)  # like Ctrl-C while probes run
        ctx.run(["sleep", "0.5"])
        return Outcome.passed("slept")

    checks = dict(CHECKS)
    checks["t.uname"] = CheckSpec("t.uname", TargetKind.HOST, slow, "slow")
    run = Engine(catalogue, inventory, transport_factory=factory, checks=checks, workers=1).run()

    assert started.is_set()
    assert run.partial
    assert len(run.results) == 7
    statuses = {(r.check, r.target): r.status for r in run.results}
    assert statuses[("t.uname", "other")] == Status.ERROR
    validate_report(build_report(run))


def test_fail_on_threshold(tmp_path: Path) -> None:
    from controlcheck.model import Severity

    catalogue, inventory = _setup(tmp_path)

    def failing(ctx: CheckContext) -> Outcome:
        return Outcome.failed("bad")

    checks = {**CHECKS, "t.crash": CheckSpec("t.crash", TargetKind.HOST, failing, "fails")}
    run = Engine(catalogue, inventory, transport_factory=factory, checks=checks).run()
    assert exit_code(run.results, Severity.HIGH) == 1
    assert exit_code(run.results, Severity.CRITICAL) == 0


def test_cut_output_is_never_judged(tmp_path: Path) -> None:
    catalogue, inventory = _setup(tmp_path)

    def grep_like(ctx: CheckContext) -> Outcome:
        out = ctx.run(["yes", "ok"]).text  # endless output: the cap cuts it
        return Outcome.passed("no 'bad' line") if "bad" not in out else Outcome.failed("bad")

    checks = {**CHECKS, "t.uname": CheckSpec("t.uname", TargetKind.HOST, grep_like, "x")}
    run = Engine(catalogue, inventory, transport_factory=factory, checks=checks).run()
    row = next(r for r in run.results if r.check == "t.uname" and r.target == "good")
    assert row.status == Status.ERROR
    assert "printed more than 4 MiB" in row.message and "yes ok" in row.message
