"""Exit codes, the contract every command shares (DESIGN.md).

0  every check at or above ``fail_on`` passed (or was skipped/waived/manual)
1  at least one such check failed
2  usage or configuration error (raised before any check runs)
3  nothing failed, but some such checks could not be decided (error)
"""

from __future__ import annotations

from collections.abc import Iterable

from controlcheck.model import CheckResult, Severity, Status

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNDECIDED = 3


def exit_code(results: Iterable[CheckResult], fail_on: Severity = Severity.LOW) -> int:
    relevant = [r for r in results if r.severity.at_least(fail_on)]
    if any(r.status == Status.FAIL for r in relevant):
        return EXIT_FAIL
    if any(r.status == Status.ERROR for r in relevant):
        return EXIT_UNDECIDED
    return EXIT_OK
