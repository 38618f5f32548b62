"""The layer rule and the one git boundary of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xp"


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe], cwd=SRC.parents[1], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def _git_calls(path: Path, root: Path = SRC) -> list[str]:
    """Places in ``path`` that run git: ``x.git(...)``, ``run_git(...)``, or a subprocess
    call whose argument list starts with the literal "git"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("git", "run_git"):
            found.append(f"{path.relative_to(root)}:{node.lineno} {name}()")
        elif name in ("run", "Popen", "check_output", "check_call", "call") and node.args:
            first = node.args[0]
            if (
                isinstance(first, (ast.List, ast.Tuple))
                and first.elts
                and isinstance(first.elts[0], ast.Constant)
                and first.elts[0].value == "git"
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno} subprocess git")
    return found


@pytest.mark.parametrize(
    "package", sorted(p.name for p in SRC.iterdir() if p.is_dir() and p.name != "gitstore")
)
def test_only_gitstore_runs_git(package: str) -> None:
    if package == "__pycache__":
        return
    calls = [c for f in sorted((SRC / package).rglob("*.py")) for c in _git_calls(f)]
    assert calls == [], "git runs outside xp.gitstore: " + ", ".join(calls)


def test_top_level_modules_run_no_git() -> None:
    calls = [c for f in sorted(SRC.glob("*.py")) for c in _git_calls(f)]
    assert calls == []


def test_the_checker_sees_a_git_call(tmp_path: Path) -> None:
    """The scan itself must be able to fail. (The probe is written under tmp_path, not into
    src/xp/, where another worker's scan of the same folder would find it.)"""
    sample = tmp_path / "_probe_for_test.py"
    sample.write_text("import subprocess\nsubprocess.run(['git', 'status'])\nrepo.git('x')\n")
    assert len(_git_calls(sample, root=tmp_path)) == 2
