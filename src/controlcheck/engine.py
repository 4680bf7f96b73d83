"""Plan control × check × target, run concurrently, never lose a row.

Targets run in parallel (one worker per target at a time); the checks of one
target run in order on one ``TargetSession`` so a host gets one connection.
Host connections come from one ``SharedTransports`` per run, so a check that
needs another inventory host (a zone scanning ``via`` it) shares that host's
connection instead of logging in again per target.
Every exception — unreachable host, refused key, timeout, a bug in a probe —
becomes a result with status ``error`` and the reason.  If the run is
interrupted, every check not yet decided is recorded as ``error``
("interrupted") and the run is marked partial, so a report is still written.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controlcheck.catalogue import Catalogue, CheckRef, Control
from controlcheck.inventory import Inventory, Target
from controlcheck.model import CheckResult, Outcome, Status, TargetKind
from controlcheck.probes import registry
from controlcheck.probes.base import (
    CheckContext,
    CheckSpec,
    EvidenceStore,
    SharedTransports,
    TargetSession,
)
from controlcheck.transports.base import Transport, TransportError

Clock = Callable[[], datetime]
TransportFactory = Callable[[Target], Transport]
ResultHook = Callable[[CheckResult], CheckResult]

_NO_TARGET_HINT = {
    TargetKind.HOST: "add a host under 'hosts:' in the inventory",
    TargetKind.ENDPOINT: "add a TLS endpoint under 'endpoints:' in the inventory",
    TargetKind.APPLICATION: "add an application under 'applications:' in the inventory",
    TargetKind.DEVICES: "add 'devices: {assets: ..., register: ...}' to the inventory",
    TargetKind.ORGANISATION: "add an 'organisation:' section to the inventory",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PlannedCheck:
    control: Control
    check: CheckRef
    spec: CheckSpec
    target: Target | None  # None: no target of the kind the check needs


@dataclass
class Run:
    id: str
    started: datetime
    finished: datetime | None
    catalogue: Catalogue
    inventory: Inventory
    results: list[CheckResult]
    evidence: EvidenceStore
    partial: bool = False
    planned: int = 0
    notes: list[str] = field(default_factory=list)


def plan(catalogue: Catalogue, inventory: Inventory,
         checks: Mapping[str, CheckSpec] | None = None) -> list[PlannedCheck]:
    """Every control × check × applicable target, in catalogue order."""
    checks = registry() if checks is None else checks
    items: list[PlannedCheck] = []
    for control in catalogue.controls:
        for ref in control.checks:
            spec = checks[ref.id]
            targets = [t for t in inventory.of_kind(spec.target_kind)
                       if not control.only or any(t.matches(p) for p in control.only)]
            if not targets:
                items.append(PlannedCheck(control, ref, spec, None))
            items.extend(PlannedCheck(control, ref, spec, t) for t in targets)
    return items


class Engine:
    """Runs a plan.  Everything it depends on is passed in; nothing is global."""

    def __init__(
        self,
        catalogue: Catalogue,
        inventory: Inventory,
        *,
        transport_factory: TransportFactory,
        clock: Clock = utc_now,
        workers: int = 16,
        timeout: float = 30.0,
        secrets: Iterable[str] = (),
        observers: Sequence[Callable[[CheckResult], None]] = (),
        result_hooks: Sequence[ResultHook] = (),
        checks: Mapping[str, CheckSpec] | None = None,
    ) -> None:
        self.checks = registry() if checks is None else checks
        self.catalogue = catalogue
        self.inventory = inventory
        self.transport_factory = transport_factory
        self.clock = clock
        self.workers = max(1, workers)
        self.timeout = timeout
        self.evidence = EvidenceStore(clock, secrets)
        self.observers = list(observers)
        self.result_hooks = list(result_hooks)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sealed = False  # after an interrupt, late rows from running probes are dropped
        self.planned: list[PlannedCheck] = plan(catalogue, inventory, self.checks)
        self._shared = SharedTransports(transport_factory)  # replaced per run in run()

    def run(self) -> Run:
        items = self.planned
        run = Run(str(uuid.uuid4()), self.clock(), None, self.catalogue, self.inventory, [],
                  self.evidence, planned=len(items))
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cc-target")
        # Scanner hosts (zones 'via' a host) stay connected for the whole run:
        # every target borrows them, at any time.
        scanners = {str(z["via"]) for z in self.inventory.zones.values()
                    if z.get("via") and z.get("via") != "local"}
        self._shared = SharedTransports(self.transport_factory, keep=scanners)
        # Everything from here on is inside the guard: Ctrl-C may arrive while a
        # worker thread is still being started, not only while we wait.
        try:
            by_target: dict[str, list[PlannedCheck]] = {}
            for item in items:
                if item.target is None:
                    self._emit(run, self._no_target(item))
                    continue
                key = f"{item.target.kind.value}:{item.target.name}"
                by_target.setdefault(key, []).append(item)
            pending = {pool.submit(self._run_target, run, group) for group in by_target.values()}
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()  # _run_target never raises; surface bugs in the engine itself
        except KeyboardInterrupt:
            run.partial = True
            run.notes.append("interrupted: checks not yet decided are recorded as error")
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            self._fill_missing(run, items, "interrupted before this check ran")
            with self._lock:
                self._sealed = True
        else:
            pool.shutdown(wait=True)
        finally:
            self._shared.close()
        position = {(i.control.id, i.check.id, i.target.name if i.target else "-"): n
                    for n, i in enumerate(items)}
        with self._lock:
            run.results.sort(key=lambda r: position.get((r.control, r.check, r.target), 0))
        run.finished = self.clock()
        return run

    def _run_target(self, run: Run, items: list[PlannedCheck]) -> None:
        target = items[0].target
        assert target is not None
        opener = (lambda: self.transport_factory(target)) \
            if target.kind == TargetKind.HOST else None
        session = TargetSession(target, opener, self._shared)
        try:
            for item in items:
                if self._stop.is_set():
                    return
                self._emit(run, self._run_one(run, item, session))
        finally:
            try:
                session.close()
            except Exception:  # closing a broken connection must not lose results
                pass

    def _run_one(self, run: Run, item: PlannedCheck, session: TargetSession) -> CheckResult:
        assert item.target is not None
        ctx = CheckContext(target=item.target, params=item.check.params, control=item.control,
                           session=session, evidence=self.evidence, clock=self.clock,
                           inventory=self.inventory,
                           timeout=float(item.target.spec.get("timeout", self.timeout)))
        started = self.clock()
        t0 = time.monotonic()
        try:
            outcome = item.spec.func(ctx)
            if not isinstance(outcome, Outcome):
                outcome = Outcome.error(f"probe returned {type(outcome).__name__}, not an Outcome")
        except TransportError as exc:
            outcome = Outcome.error(self.evidence.redact(str(exc)))
        except Exception as exc:  # a bug in a probe: error with the reason, never a gap
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome = Outcome.error(self.evidence.redact(
                f"probe failed: {type(exc).__name__}: {exc} "
                f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})"))
        evidence = tuple(outcome.evidence) or tuple(ctx.collected)
        return CheckResult(
            control=item.control.id, check=item.check.id, target=item.target.name,
            target_kind=item.target.kind.value, status=outcome.status,
            severity=item.control.severity_of(item.check), message=outcome.message,
            evidence=evidence, facts=dict(outcome.facts), started=started,
            duration_s=time.monotonic() - t0)

    def _no_target(self, item: PlannedCheck) -> CheckResult:
        kind = item.spec.target_kind
        return CheckResult(
            control=item.control.id, check=item.check.id, target="-", target_kind=kind.value,
            status=Status.SKIP, severity=item.control.severity_of(item.check),
            message=f"no {kind.value} targets in the inventory; {_NO_TARGET_HINT[kind]} "
                    f"to check this", started=self.clock())

    def _emit(self, run: Run, result: CheckResult) -> None:
        for hook in self.result_hooks:
            result = hook(result)
        with self._lock:
            if self._sealed:
                return
            run.results.append(result)
        for obs in self.observers:
            obs(result)

    def _fill_missing(self, run: Run, items: list[PlannedCheck], reason: str) -> None:
        with self._lock:
            done = {(r.control, r.check, r.target) for r in run.results}
        for item in items:
            name = item.target.name if item.target else "-"
            if (item.control.id, item.check.id, name) not in done:
                self._emit(run, CheckResult(
                    control=item.control.id, check=item.check.id, target=name,
                    target_kind=item.spec.target_kind.value, status=Status.ERROR,
                    severity=item.control.severity_of(item.check), message=reason))
