"""``xp commit`` records without the run machinery (issue 18): the same commit ``Run`` makes."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from tests.helpers import git
from xp import format as fmt
from xp.config import load_config
from xp.errors import InvalidKeyError, InvalidValueError
from xp.gitstore.repo import find_repo
from xp.tracking import commit_workspace as cw

CASES = [
    # name, experiment, message, params, metrics, a missing metrics file configured
    (None, None, None, {}, {}, False),
    ("rf", "sweep", "a note\nwith two lines", {"lr": 0.01, "opt": "adam"}, {"loss": 0.5}, False),
    (None, None, "m", {"n": 10**30, "flag": True, "none": None}, {"acc": 3, "nan": math.nan}, True),
]


@pytest.mark.parametrize(("name", "experiment", "message", "params", "metrics", "missing"), CASES)
def test_a_commit_is_the_one_run_makes_for_the_same_values(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str | None,
    experiment: str | None,
    message: str | None,
    params: dict[str, object],
    metrics: dict[str, float | int],
    missing: bool,
) -> None:
    """Same clock, same id: the lean path's commit and ``Run``'s are the same object, so
    their trees (the workspace, every record file) and commit messages are too."""
    (repo / "train.py").write_text("print('edited')\n")  # dirty, so the snapshot matters
    (repo / "big.bin").write_bytes(b"x" * 2000)  # over the limit: a warning in both
    (repo / ".xp").mkdir()
    extra = "metrics: [metrics.json, gone.json]\n" if missing else ""
    (repo / ".xp" / "config.yaml").write_text(f"format: 1\nmax_file_size: 1kB\n{extra}")
    (repo / "metrics.json").write_text(json.dumps({"f1": 0.25}))
    monkeypatch.setattr(sys, "argv", ["xp", "commit", "-m", "x"])
    monkeypatch.setattr(fmt, "new_run_id", lambda start: "1m8pp06j8afva7")
    clock = iter(range(1_800_000_000, 1_800_000_100))
    monkeypatch.setattr("time.time", lambda: float(next(clock)))
    xp_repo = find_repo()
    config = load_config(xp_repo)
    absent = ["gone.json"] if missing else []
    lean = cw._record(xp_repo, config, name, experiment, message, params, metrics, absent)
    git(repo, "update-ref", "-d", lean.ref)
    clock = iter(range(1_800_000_000, 1_800_000_100))
    run = cw._with_run(xp_repo, config, name, experiment, message, [], [])
    full = run(params, metrics, absent)
    assert full.ref == lean.ref
    assert full.commit == lean.commit
    assert git(repo, "rev-parse", f"{lean.ref}^{{tree}}").strip() == (
        git(repo, "rev-parse", f"{lean.commit}^{{tree}}").strip()
    )
    meta = git(repo, "show", f"{lean.ref}:.xp/run/meta.yaml")
    assert "big.bin" in meta
    assert ("gone.json" in meta) == missing


def test_a_commit_refuses_what_log_calls_refuse(repo: Path) -> None:
    """The lean path checks each value as ``log_param``/``log_metric`` do, with the same
    message, before anything is written."""
    xp_repo = find_repo()
    config = load_config(xp_repo)
    refs = git(repo, "for-each-ref", "refs/xp/")
    big: dict[str, object] = {f"p{i}": "x" * 5000 for i in range(1000)}  # past the budget
    bad: list[tuple[type[Exception], str | None, dict[str, object], dict[str, object]]] = [
        (InvalidKeyError, None, {"bad\nkey": 1}, {}),
        (InvalidValueError, None, {}, {"loss": "high"}),
        (InvalidValueError, None, big, {}),
        (InvalidValueError, "a\x00b", {}, {}),
    ]
    for error, message, params, metrics in bad:
        with pytest.raises(error) as lean:
            cw._record(xp_repo, config, None, None, message, params, metrics, [])  # type: ignore[arg-type]
        with pytest.raises(error) as full:
            cw._with_run(xp_repo, config, None, None, message, [], [])(params, metrics, [])  # type: ignore[arg-type]
        assert str(lean.value) == str(full.value)
    assert "MiB" in str(lean.value) or "control character" in str(lean.value)
    assert git(repo, "for-each-ref", "refs/xp/") == refs


def test_xp_commit_leaves_the_run_machinery_alone(repo: Path) -> None:
    """Without artifacts, data or system metrics, ``xp commit`` imports neither the run
    machinery nor the modules only it uses; with an artifact it goes through ``Run``."""
    import subprocess

    code = (
        "import sys\n"
        "from xp.cli import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "heavy = ('xp.tracking.run', 'xp.tracking.media', 'xp.gitstore.trees', 'inspect',"
        " 'xp.gitstore.signing',"
        " 'ast', 'dis', 'tokenize')\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code, "commit", "-m", "x", "--param", "a=1"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "loaded: []", out.stdout
    (repo / "model.bin").write_bytes(b"weights")
    out = subprocess.run(
        [sys.executable, "-c", code, "commit", "--artifact", "model.bin"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'xp.tracking.run'" in out.stdout.strip().splitlines()[-1]
