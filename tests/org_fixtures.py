"""Render ``tests/data/org`` with dates relative to today, so the fixtures never rot.

``@TODAY@``, ``@TODAY-30@``, ``@TODAY+10@`` become ISO dates; ``@NOW-2@``
becomes an ISO UTC date-time: today 06:00Z (or now, if earlier) minus N days,
so "@NOW-0@" is never in the future of the test run.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DATA = Path(__file__).parent / "data" / "org"
_TOKEN = re.compile(r"@(TODAY|NOW)([+-]\d+)?@")
_TEXT_SUFFIXES = {".csv", ".json", ".yaml", ".yml"}


def fill_dates(text: str, now: datetime) -> str:
    today = now.date()

    def sub(m: re.Match[str]) -> str:
        days = int(m.group(2) or 0)
        if m.group(1) == "TODAY":
            return (today + timedelta(days=days)).isoformat()
        stamp = min(now, datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=6))
        return (stamp + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return _TOKEN.sub(sub, text)


def render(dest: Path, now: datetime | None = None) -> Path:
    """Copy tests/data/org to ``dest`` with the dates filled in; returns ``dest``."""
    now = now or datetime.now(UTC)
    for src in DATA.rglob("*"):
        out = dest / src.relative_to(DATA)
        if src.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix in _TEXT_SUFFIXES:
            out.write_text(fill_dates(src.read_text(encoding="utf-8"), now), encoding="utf-8")
        else:
            shutil.copyfile(src, out)
    return dest


def today() -> date:
    return datetime.now(UTC).date()
