"""LocalTransport: deadlines cover the whole exchange, reads are capped, nothing leaks."""

from __future__ import annotations

import os
import sys
import time

import pytest

from controlcheck.transports.base import CommandTimeout
from controlcheck.transports.local import LocalTransport

PY = sys.executable


def test_runs_argv_without_a_shell() -> None:
    t = LocalTransport()
    r = t.run(["echo", "a b", "$HOME;", "`id`"])
    assert r.ok and r.text == "a b $HOME; `id`\n"
    assert r.command_line == "echo 'a b' '$HOME;' '`id`'"


def test_exit_status_and_stderr_are_returned_not_raised() -> None:
    r = LocalTransport().run([PY, "-c", "import sys; sys.stderr.write('bad'); sys.exit(3)"])
    assert r.exit_status == 3 and r.stderr == b"bad"


def test_missing_command_is_exit_127() -> None:
    r = LocalTransport().run(["/nonexistent/tool", "x"])
    assert r.exit_status == 127


def test_stdin_is_passed() -> None:
    r = LocalTransport().run(["cat"], stdin=b"hello")
    assert r.stdout == b"hello"


def test_hanging_command_times_out_within_the_deadline() -> None:
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout, match="within 1 s"):
        LocalTransport("h1").run(["sleep", "30"], timeout=1)
    assert time.monotonic() - t0 < 3


def test_deadline_is_for_the_whole_exchange_not_per_read() -> None:
    # Prints a byte every 0.2 s for 10 s: a per-read timeout would never fire.
    trickle = ("import sys,time\nfor _ in range(50):\n"
               " sys.stdout.write('x'); sys.stdout.flush(); time.sleep(0.2)")
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout):
        LocalTransport().run([PY, "-c", trickle], timeout=1.5)
    assert time.monotonic() - t0 < 3.5


def test_huge_output_is_capped_and_flagged() -> None:
    t0 = time.monotonic()
    r = LocalTransport().run(["yes"], max_output=1_000_000, timeout=10)
    assert r.truncated
    assert len(r.stdout) == 1_000_000
    assert time.monotonic() - t0 < 5


def test_timeout_kills_the_whole_process_group(tmp_path: os.PathLike[str]) -> None:
    pidfile = os.path.join(tmp_path, "child.pid")
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    with pytest.raises(CommandTimeout):
        LocalTransport().run(["sh", "-c", script], timeout=1)
    child = int(open(pidfile).read())
    time.sleep(0.2)
    assert _state(child) in ("gone", "Z"), "the background sleep survived the timeout"


def _state(pid: int) -> str:
    """'gone', or the process state letter (a killed orphan may linger as a zombie 'Z')."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[0]


def test_prefix_is_prepended() -> None:
    r = LocalTransport(prefix=["env", "FOO=bar"]).run(["sh", "-c", "echo $FOO"])
    assert r.text == "bar\n"


def test_locale_is_fixed_for_parseable_output() -> None:
    r = LocalTransport().run(["sh", "-c", "echo $LC_ALL"])
    assert r.text == "C\n"
