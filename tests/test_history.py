"""What broke since last week: diffs between two real reports of the engine."""

from __future__ import annotations

import json
from pathlib import Path

from controlcheck.cli import main
from controlcheck.history import diff_reports


def _report(tmp: Path, name: str, results: list[tuple[str, str, str, str]]) -> Path:
    path = tmp / name
    path.write_text(json.dumps({
        "run": {"id": name, "started": "2026-11-18T00:00:00+00:00"},
        "results": [{"control": c, "check": ch, "target": t, "status": s, "message": f"{s} msg"}
                    for c, ch, t, s in results]}))
    return path


def test_classifies_regressions_fixes_and_new_failures(tmp_path: Path) -> None:
    older = json.loads(_report(tmp_path, "a.json", [
        ("FW-01", "host.firewall.default-deny", "web1", "pass"),
        ("FW-01", "host.firewall.default-deny", "web2", "fail"),
        ("PATCH-01", "host.patch.security-updates", "web1", "pass"),
        ("AV-01", "host.av.engine", "web1", "pass"),
        ("AV-01", "host.av.engine", "gone", "pass"),
    ]).read_text())
    newer = json.loads(_report(tmp_path, "b.json", [
        ("FW-01", "host.firewall.default-deny", "web1", "fail"),   # broke
        ("FW-01", "host.firewall.default-deny", "web2", "pass"),   # fixed
        ("PATCH-01", "host.patch.security-updates", "web1", "error"),  # cannot decide any more
        ("AV-01", "host.av.engine", "web1", "pass"),               # unchanged
        ("AV-01", "host.av.engine", "new", "fail"),                # new host, failing
    ]).read_text())

    diff = diff_reports(older, newer)
    kinds = {(c.check, c.target): c.kind for c in diff.changes}
    assert kinds == {
        ("host.firewall.default-deny", "web1"): "new-failure",
        ("host.firewall.default-deny", "web2"): "fixed",
        ("host.patch.security-updates", "web1"): "regressed",
        ("host.av.engine", "new"): "new-failure",
        ("host.av.engine", "gone"): "removed",
    }


def test_diff_command_exits_1_on_new_failures(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    a = _report(tmp_path, "a.json", [("FW-01", "x.y", "h", "pass")])
    b = _report(tmp_path, "b.json", [("FW-01", "x.y", "h", "fail")])
    assert main(["diff", str(a), str(b), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["changes"][0]["kind"] == "new-failure"
    assert main(["diff", str(b), str(a)]) == 0  # only a fix


def test_diff_rejects_a_file_that_is_not_a_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "x.json"
    bad.write_text("{\n  \"a\": 1,\n  oops\n}")
    good = _report(tmp_path, "a.json", [])
    assert main(["diff", str(bad), str(good)]) == 2
    assert f"{bad}:3:" in capsys.readouterr().err


def test_history_dir_compares_with_the_previous_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    hist = tmp_path / "hist"
    args = ["run", "--only", "PATCH-03", "--history", str(hist), "-o", str(tmp_path / "r.json")]
    main(args)
    first = capsys.readouterr().out
    assert "no earlier run in the history yet" in first
    main(args)
    second = capsys.readouterr().out
    assert "since run" in second
    assert len(list(hist.glob("*.json"))) == 2
