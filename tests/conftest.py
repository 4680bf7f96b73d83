"""Shared test helpers: schema validation of every report a test produces."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"
# The official OSCAL/SARIF/JUnit schemas live in shared/, beside the repository
# (CI lays a copy there); CONTROLCHECK_SHARED overrides for other layouts.
SHARED = Path(os.environ.get("CONTROLCHECK_SHARED", REPO.parent / "shared"))
SHARED_SCHEMAS = SHARED / "schemas"


def validate_report(report: dict[str, Any]) -> None:
    """Every report.json a test produces must match the shipped schema."""
    schema = json.loads((SCHEMAS / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(report)


@pytest.fixture
def report_validator() -> Any:
    return validate_report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root and the namespace test lab")
