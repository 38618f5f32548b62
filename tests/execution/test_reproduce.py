"""`xp reproduce`: real re-runs in temporary checkouts, and the metric check."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import git
from xp.cli import cli
from xp.execution.reproduce import close, compare

SCRIPT = """
import random, sys, xp, yaml
p = yaml.safe_load(open("params.yaml"))
data = open("data/x.txt").read() if {reads_data} else ""
with xp.start_run():
    {log_input}
    noise = random.random() if "--noisy" in sys.argv else 0.0
    xp.log_metric("score", p["lr"] * 10 + len(data) + noise)
    xp.log_metric("diverged", float("nan"))
"""


def write_script(repo: Path, reads_data: bool = False, cache: bool = False) -> None:
    log_input = f"xp.log_input('data/x.txt', cache={cache})" if reads_data else "pass"
    (repo / "train.py").write_text(SCRIPT.format(reads_data=reads_data, log_input=log_input))


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout + result.stderr


def the_new_run(original: str) -> xp.query.resolve.RunView:  # type: ignore[name-defined]
    new = [r for r in xp.list_runs() if r.id != original]
    assert len(new) == 1
    return xp.get_run(new[0].id)


def test_reproduce_runs_the_recorded_code_not_the_workspace(repo: Path) -> None:
    write_script(repo)
    run_cli("run", "-n", "orig", "--", sys.executable, "train.py")
    original = xp.list_runs()[0].id
    (repo / "params.yaml").write_text("lr: 0.7\nmodel:\n  depth: 3\n")  # edited since
    (repo / "train.py").write_text("raise SystemExit('the workspace is not what ran')\n")
    before = {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    result = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "PASS: 2 metric(s)" in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["metric", "original", "reproduced", "diff", "result"]
    assert lines[2].split() == ["diverged", "nan", "nan", "nan", "ok"]  # NaN matches NaN
    assert lines[3].split() == ["score", "1", "1", "0", "ok"]
    new = the_new_run(original)
    assert new.tags["xp.reproduces"] == original
    assert new.name == "orig-repro"
    assert new.meta["baseline"] == xp.get_run(original).meta["baseline"]
    assert git(repo, "diff", xp.get_run(original).commit, new.commit, "--", ":!.xp") == ""
    assert {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()} == before
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary checkout is gone


def test_a_mismatch_fails_the_check_and_tolerance_can_admit_it(repo: Path) -> None:
    write_script(repo)
    run_cli("run", "--", sys.executable, "train.py", "--noisy")
    original = xp.list_runs()[0].id
    result = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAIL: 1 metric(s) differ")
    loose = CliRunner().invoke(cli, ["reproduce", original, "--check", "--atol", "1.0"])
    assert loose.exit_code == 0, loose.stdout
    unchecked = CliRunner().invoke(cli, ["reproduce", original])  # no --check: no verdict
    assert unchecked.exit_code == 0
    assert "MISMATCH" not in unchecked.stdout


def test_a_failing_reproduction_fails_the_check(repo: Path) -> None:
    """The original needed an ignored file that no snapshot holds: the re-run exits 2."""
    (repo / ".gitignore").write_text("flag\n")
    (repo / "flag").write_text("")
    (repo / "flaky.py").write_text(
        "import os, sys, xp\nxp.log_metric('m', 1)\nsys.exit(0 if os.path.exists('flag') else 2)\n"
    )
    run_cli("run", "--", sys.executable, "flaky.py")
    original = xp.list_runs()[0].id
    check = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    assert check.exit_code == 1
    assert "failed" in check.stdout.splitlines()[0]
    assert check.stdout.splitlines()[-1] == "FAIL: the command failed (rtol=1e-05 atol=1e-08)"


def test_cached_data_inputs_are_restored(repo: Path) -> None:
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("12345")
    write_script(repo, reads_data=True, cache=True)
    run_cli("run", "--", sys.executable, "train.py")
    original = xp.list_runs()[0].id
    assert xp.get_run(original).metrics["score"] == 6.0
    (repo / "data" / "x.txt").write_text("changed to something longer")
    result = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (repo / "data" / "x.txt").read_text() == "changed to something longer"


def test_a_corrupt_cached_input_is_never_used(repo: Path) -> None:
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("12345")
    write_script(repo, reads_data=True, cache=True)
    run_cli("run", "--", sys.executable, "train.py")
    original = xp.list_runs()[0].id
    sha = xp.get_run(original).inputs[0].sha256
    obj = repo / ".git" / "xp" / "cache" / "sha256" / sha[:2] / sha[2:4] / sha
    obj.chmod(0o644)
    obj.write_text("123456789")  # bit rot: the same name, other bytes
    result = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    # the 9 corrupt bytes would score 10; the workspace's unchanged copy scores 6 again
    assert result.exit_code == 0, result.stdout + result.stderr
    assert obj.read_text() == "12345"  # dropped, then cached again by the good run


def test_uncached_changed_data_is_named_in_a_warning(repo: Path) -> None:
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("12345")
    write_script(repo, reads_data=True, cache=False)
    run_cli("run", "--", sys.executable, "train.py")
    original = xp.list_runs()[0].id
    (repo / "data" / "x.txt").write_text("123")
    result = CliRunner().invoke(cli, ["reproduce", original, "--check"])
    assert result.exit_code == 1
    assert "data input data/x.txt changed since the run" in result.stderr


def test_a_script_run_alone_is_reproduced_through_python(repo: Path) -> None:
    write_script(repo)
    subprocess.run([sys.executable, "train.py"], cwd=repo, check=True)
    original = xp.list_runs()[0].id
    assert xp.get_run(original).meta["command"] == ["train.py"]
    out = run_cli("reproduce", original, "--check")
    assert "PASS" in out


def test_runs_without_a_command_are_refused(repo: Path) -> None:
    subprocess.run([sys.executable, "-m", "xp", "commit", "-n", "by-hand"], cwd=repo, check=True)
    result = CliRunner().invoke(cli, ["reproduce", "by-hand"])
    assert result.exit_code == 1
    assert "recorded no command xp can re-run" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (1.0, 1.0, True),
        (1.0, 1.0 + 1e-7, True),
        (1.0, 1.001, False),
        (0.0, 1e-9, True),
        (math.nan, math.nan, True),
        (math.nan, 1.0, False),
        (1.0, math.nan, False),
        (math.inf, math.inf, True),
        (math.inf, -math.inf, False),
    ],
)
def test_close(old: float, new: float, ok: bool) -> None:
    assert close(old, new, 1e-5, 1e-8) is ok


def test_compare_lists_missing_and_new_metrics() -> None:
    rows = compare({"a": 1.0, "b": 2.0, "t_s": 1.0}, {"a": 1.0, "c": 3.0, "t_s": 2.0}, 1e-5, 0)
    assert [(r.metric, r.ok, r.note) for r in rows] == [
        ("a", True, ""),
        ("b", False, "not logged by the reproduction"),
        ("c", True, "new metric"),
        ("t_s", False, ""),
    ]
    ignored = compare({"t_s": 1.0}, {"t_s": 2.0}, 1e-5, 0, ignore=("*_s",))
    assert [(r.ok, r.note) for r in ignored] == [(True, "ignored")]


def test_a_notebook_run_is_refused_with_the_way_out(repo: Path, tmp_path: Path) -> None:
    # What a run recorded in Jupyter has as its command: the kernel's argv.
    kernel = tmp_path / "ipykernel_launcher.py"
    kernel.write_text("import xp\nwith xp.start_run(name='nb'):\n    xp.log_metric('acc', 1.0)\n")
    connection = tmp_path / "kernel-4f1c.json"
    subprocess.run([sys.executable, str(kernel), "-f", str(connection)], cwd=repo, check=True)
    (run,) = xp.list_runs()
    result = CliRunner().invoke(cli, ["reproduce", run.id, "--check"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "recorded in a notebook" in lines[0]
    assert "jupyter nbconvert --to script" in lines[0]
    assert len(xp.list_runs()) == 1  # nothing ran, nothing recorded


SLOW = """
import os, pathlib, time, xp
with xp.start_run():
    xp.log_metric("acc", 1.0)
    if os.environ.get("READY"):
        pathlib.Path(os.environ["READY"]).write_text("running")
        time.sleep(120)
"""


def test_sigterm_to_reproduce_leaves_no_checkout_behind(repo: Path, tmp_path: Path) -> None:
    import os
    import signal

    from tests.helpers import spawned, wait_for

    (repo / "slow.py").write_text(SLOW)
    run_cli("run", "-n", "orig", "--", sys.executable, "slow.py")
    original = xp.list_runs()[0].id
    ready = tmp_path / "ready"
    env = {**os.environ, "READY": str(ready)}
    with spawned(
        [sys.executable, "-m", "xp", "reproduce", original],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        wait_for(ready.exists, "the reproduction's command to run")
        assert git(repo, "worktree", "list").count("\n") == 2  # the checkout exists now
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert git(repo, "worktree", "list").count("\n") == 1  # removed on the way out
    tmp = repo / ".git" / "xp" / "tmp"
    assert not [p for p in tmp.rglob("*") if p.is_dir() and "reproduce" in p.name]
    statuses = {r.id: xp.get_run(r.id).status for r in xp.list_runs()}
    assert sorted(statuses.values()) == ["finished", "killed"]
