"""Reporters turn a finished ``Run`` into a file.

``FORMATS`` maps a ``--format`` name to the module that renders it; each
module has ``render(run, fail_on) -> str`` (and ``validate(text)`` in tests).
"""

FORMATS: dict[str, str] = {
    "json": "controlcheck.reporters.json_report",
    "junit": "controlcheck.reporters.junit",
    "sarif": "controlcheck.reporters.sarif",
    "html": "controlcheck.reporters.html",
    "oscal": "controlcheck.reporters.oscal",
}
