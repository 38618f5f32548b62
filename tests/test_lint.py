"""The code passes its linters and its type checker: ruff (rules and format) and mypy --strict,
as configured in pyproject.toml. Slow (mypy starts cold in CI), so CI runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_clean(command: list[str]) -> None:
    exe = Path(sys.executable).parent / command[0]  # this venv's, not whatever PATH has
    proc = subprocess.run(
        [str(exe) if exe.exists() else command[0], *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
