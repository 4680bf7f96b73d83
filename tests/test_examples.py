"""Every inventory the repository ships as an example validates, so the README never lies."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlcheck.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "inventory").glob("**/*.yaml"))
EXAMPLES = [p for p in EXAMPLES if p.parent.name in ("inventory", "examples")]


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_inventory_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-i", str(path)]) == 0, capsys.readouterr().err
