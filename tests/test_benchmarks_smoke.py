"""The benchmark runner keeps working: a --quick run of every workload, xp side only.

No timing is asserted (figures depend on the machine); only that each workload runs, reports
every figure its table rows name, and cleans up its temporary directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,  # a hang guard, not a timing test: every workload at quick size
    )


@pytest.mark.slow
def test_quick_run_reports_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = bench(tmp_path, "--quick", "--peers", "none", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    by_key = {w["key"]: w for w in report["workloads"]}
    assert {"W1", "W2", "W4", "startup", "commit", "crash", "clones"} <= set(by_key)
    for workload in by_key.values():
        assert workload["xp"]["error"] is None, workload["xp"]["error"]
        for row in workload["rows"]:
            assert row["xp"] is not None, row
            assert row["xp"] > 0 or (row["unit"] == "n" and row["xp"] == 0), row  # 0 lost
            assert row["peer_value"] is None  # --peers none
    assert "W4 per point, whole run" in proc.stdout
    assert list((tmp_path / "tmp").iterdir()) == []  # every workdir was removed


def test_unknown_workload_is_one_line_naming_the_choices(tmp_path: Path) -> None:
    proc = bench(tmp_path, "--only", "W1,nope")
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("unknown workload nope; choose from W1, W2, ")


def test_list_names_each_workload_and_its_peer(tmp_path: Path) -> None:
    proc = bench(tmp_path, "--list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    keys = {line.split()[0]: line for line in lines}
    assert {"W1", "W2", "W4", "startup", "commit"} <= set(keys)
    assert "peer: mlflow" in keys["W1"]
    assert "peer: dvc" in keys["commit"]


def test_a_workload_whose_modules_are_missing_is_left_out_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "benchmarks").mkdir()
    for name in ("run.py", "harness.py", "__init__.py"):
        (tmp_path / "benchmarks" / name).write_text((RUNNER.parent / name).read_text())
    (tmp_path / "benchmarks" / "needy.py").write_text(
        "from benchmarks.harness import Metric, Workload\n"
        "WORKLOAD = Workload(key='N1', title='needs a module', metrics=(Metric('t', 't'),),\n"
        "    xp=lambda ctx: {'t': 1.0}, needs=('no_such_module_xp',), needs_hint='install it')\n"
    )
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "benchmarks" / "run.py"), "--only", "N1", "--json",
         str(tmp_path / "r.json")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "N1: left out, needs no_such_module_xp; install it" in proc.stdout
    assert json.loads((tmp_path / "r.json").read_text())["workloads"] == []


@pytest.mark.slow
def test_many_writers_quick_run_loses_no_run_and_no_push(tmp_path: Path) -> None:
    # T3 is long, so a run of everything leaves it out; --only names it (issue 14 item 3)
    out = tmp_path / "results.json"
    proc = bench(tmp_path, "--quick", "--only", "T3", "--peers", "none", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (workload,) = json.loads(out.read_text())["workloads"]
    assert workload["xp"]["error"] is None, workload["xp"]["error"]
    figures = workload["xp"]["median"]
    assert figures["failed"] == 0  # every push went through; the side checks runs and bytes
    assert figures["push_p99"] >= figures["push_p50"] > 0
