"""Real restic and borg repositories for the backup tests.

``restic init`` costs ~3 s, so the tests init one template repository per session
and copy it; ``restic backup --time`` fakes a snapshot's age.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

PASSWORD = "lab-restic-password-7f3a"
PASSWORD_ENV = "CC_TEST_BACKUP_PASSWORD"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "BORG_"))}
    env.update(extra)
    return env


def restic(repo: Path, *args: str) -> str:
    return subprocess.run(["restic", "-r", str(repo), "--no-cache", "-q", *args],
                          env=_env(RESTIC_PASSWORD=PASSWORD), check=True,
                          capture_output=True, text=True).stdout


def init_restic_template(path: Path) -> Path:
    subprocess.run(["restic", "init", "-r", str(path), "-q"], env=_env(RESTIC_PASSWORD=PASSWORD),
                   check=True, capture_output=True)
    return path


def copy_repo(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def restic_backup(repo: Path, data: Path, when: datetime, host: str = "h1") -> None:
    restic(repo, "backup", "--host", host, "--time",
           when.astimezone().strftime("%Y-%m-%d %H:%M:%S"),  # restic reads local time
           str(data))


def borg_init(repo: Path) -> Path:
    subprocess.run(["borg", "init", "-e", "repokey", str(repo)],
                   env=_env(BORG_PASSPHRASE=PASSWORD), check=True, capture_output=True)
    return repo


def borg_create(repo: Path, archive: str, data: Path, when: datetime) -> None:
    subprocess.run(["borg", "create", "--timestamp", when.strftime("%Y-%m-%dT%H:%M:%S"),
                    f"{repo}::{archive}", str(data)],
                   env=_env(BORG_PASSPHRASE=PASSWORD, TZ="UTC"), check=True, capture_output=True)
