"""xp ci end to end on local repositories: a bare remote, a clone that records runs on main
and on a branch, and a fresh clone that checks the branch as CI would. The CI templates are
validated against the published JSON schemas (vendored by check-jsonschema)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, Team, git, one_line_error, xp_main
from xp.execution.ci import TEMPLATES, template
from xp.gitstore import catalog
from xp.gitstore.repo import find_repo

TRAIN = """\
import os
import xp
level = float(open("level.txt").read())
xp.log_metric("val_loss", level + float(os.environ.get("TRAIN_DRIFT", "0")))
"""


def record(root: Path, level: float, message: str) -> None:
    (root / "level.txt").write_text(f"{level}\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    code, _out, err = xp_main("run", "--", sys.executable, "train.py", cwd=root)
    assert code == 0, err


@pytest.fixture
def pr(team: Team, tmp_path: Path) -> tuple[Path, Path]:
    """main with a run at 0.30; branch feature with runs at 0.32 and 0.31; a fresh clone on
    feature, as a CI job has it. Returns (author's clone, CI's clone)."""
    a = team.a
    (a / "train.py").write_text(TRAIN)
    record(a, 0.30, "base model")
    git(a, "push", "-q", "origin", "main")
    git(a, "checkout", "-qb", "feature")
    record(a, 0.32, "try this")
    record(a, 0.31, "and this")
    git(a, "push", "-q", "origin", "feature")
    assert xp_main("push", cwd=a)[0] == 0
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "-q", "--branch", "feature", str(team.bare), "ci")
    return a, ci


def test_ci_reproduces_the_best_branch_run_and_compares(pr: tuple[Path, Path]) -> None:
    _a, ci = pr
    out = ci / "comment.md"
    # the branch's best run was fetched: its command runs only when the caller says so
    code, _text, err = xp_main("ci", "--base", "origin/main", "-m", "val_loss", cwd=ci)
    assert "pass --trust to run it" in one_line_error(code, err)
    code, text, err = xp_main(
        "ci", "--base", "origin/main", "-m", "val_loss", "--trust", "--md", str(out), cwd=ci
    )
    assert code == 0, err
    assert text == ""
    assert "xp ci: passed" in err
    comment = out.read_text()
    assert comment.startswith("### xp check passed")
    assert "- reproduction: run `" in comment
    assert "(matches)" in comment
    assert "| val_loss | 0.31 | 0.31 | ok |" in comment
    # the diff: A = main's best run, B = the branch's best (0.31, not the newer-looking 0.32)
    assert "A = the best run of origin/main" in comment
    assert re.search(r"\| val_loss \| 0\.3 \| 0\.31 \| \+0\.01 \| \+3\.3% \|", comment)
    # the fetch brought the runs; the reproduction is a new local run tagged xp.reproduces
    assert len(catalog.remote_runs(find_repo(ci))) == 3  # listed by the fetched catalog
    assert len(git(ci, "for-each-ref", "refs/xp/runs/").splitlines()) == 1


def test_ci_gates_a_regression_and_a_failed_reproduction(
    pr: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _a, ci = pr
    code, text, err = xp_main(
        "ci", "--base", "origin/main", "-m", "val_loss", "--max-regression", "2%", "--trust",
        cwd=ci,
    )  # fmt: skip
    assert code == 1
    assert text.startswith("### xp check failed")
    assert "val_loss is 3.3% worse than on origin/main (0.31 vs 0.3; allowed: 2%)" in text
    assert "xp ci: failed" in err
    code, text, err = xp_main(
        "ci", "--no-fetch", "--no-reproduce", "-m", "val_loss", "--max-regression", "5%", cwd=ci
    )
    assert code == 0, err  # origin/main by default; 3.3% is within 5%
    assert "reproduction" not in text
    # a run that does not give the same number again fails the check
    monkeypatch.setenv("TRAIN_DRIFT", "0.5")
    code, text, err = xp_main("ci", "--no-fetch", "-m", "val_loss", "--trust", cwd=ci)
    assert code == 1
    assert "differs in val_loss" in text
    assert "| val_loss | 0.31 | 0.81 | MISMATCH |" in text


def test_ci_errors(pr: tuple[Path, Path], tmp_path: Path) -> None:
    _a, ci = pr
    code, _t, err = xp_main("ci", "--base", "nope", cwd=ci)
    assert "no branch, tag or commit 'nope'" in one_line_error(code, err)
    code, _t, err = xp_main("ci", "--max-regression", "5%", cwd=ci)
    assert "--max-regression needs --metric" in one_line_error(code, err)
    code, _t, err = xp_main("ci", "--base", "origin/main", "-m", "acc", "--no-fetch", cwd=ci)
    assert "no finished run with acc" in one_line_error(code, err)


def test_diff_three_dots_compares_the_best_runs(pr: tuple[Path, Path]) -> None:
    a, _ci = pr
    code, text, err = xp_main("diff", "main...feature", "--metric", "val_loss", "--md", cwd=a)
    assert code == 0, err
    assert "A = the best run of main" in text
    assert "B = the best run of feature" in text
    assert "| val_loss | 0.3 | 0.31 |" in text
    code, text, err = xp_main("diff", "main...feature", cwd=a)  # newest: 0.31 too
    assert code == 0, err
    assert "0.31" in text


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_templates_validate_against_the_published_schemas(kind: str, tmp_path: Path) -> None:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    schema = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}[kind]
    good = tmp_path / TEMPLATES[kind]
    good.write_text(template(kind))
    proc = subprocess.run(
        [exe, "--builtin-schema", schema, str(good)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / f"broken-{TEMPLATES[kind]}"  # the check can fail
    broken.write_text(template(kind).replace("script:", "scrpt:").replace("runs-on:", "run-on:"))
    proc = subprocess.run(
        [exe, "--builtin-schema", schema, str(broken)], capture_output=True, text=True
    )
    assert proc.returncode != 0
    # docs/ci.md shows the very same file, and xp ci --template prints it
    assert template(kind) in (ROOT / "docs" / "ci.md").read_text()
    code, text, _err = xp_main("ci", "--template", kind, cwd=tmp_path)
    assert code == 0
    assert text == template(kind)
