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


def _direct_output(path: Path, root: Path = SRC) -> list[str]:
    """Calls in ``path`` that print past ``render.echo`` (click.echo/secho, print), with the
    source line, e.g. ``cli/x.py:12 click.echo("hi")``."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "click"
            and func.attr in ("echo", "secho")
        ) or (isinstance(func, ast.Name) and func.id == "print"):
            found.append(f"{path.relative_to(root)}:{node.lineno} {lines[node.lineno - 1].strip()}")
    return found


def test_the_cli_prints_through_render_echo_only(tmp_path: Path) -> None:
    """Record strings reach the terminal through the one place that neutralises escape
    sequences, cli/render.echo. Exempt: render itself, the reference generator (help text)
    and the Ctrl-C line (no record text in it)."""
    calls = [
        c
        for f in sorted((SRC / "cli").glob("*.py"))
        if f.name not in ("render.py", "reference.py")
        for c in _direct_output(f)
    ]
    assert [c for c in calls if '"xp: interrupted"' not in c] == []
    sample = tmp_path / "_probe.py"
    sample.write_text("import click\nclick.echo(name)\nprint(name)\nrender.echo(name)\n")
    assert len(_direct_output(sample, root=tmp_path)) == 2
