"""Sweeps: every point a run in its own temporary checkout; the user's files never change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import git, journal_points, spawned, wait_for
from xp.cli import cli
from xp.execution.sweep import choose

SCRIPT = """
import sys, yaml, xp
p = yaml.safe_load(open("params.yaml"))
data = open("data/rows.csv").read().count("\\n")
if p["lr"] == 0.2:
    sys.exit("lr 0.2 diverges")
with xp.start_run():
    xp.log_input("data/rows.csv")  # linked in, yet a real file inside the checkout
    xp.log_metric("score", p["lr"] * 100 + p["model"]["depth"] + data)
"""


def setup(repo: Path) -> None:
    (repo / "train.py").write_text(SCRIPT)
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    (repo / "data" / "rows.csv").write_text("a\nb\n")
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("params: [params.yaml]\ndata: [data/rows.csv]\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")


def files(repo: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }


def test_grid_sweep_runs_each_point_in_its_own_checkout(repo: Path) -> None:
    setup(repo)
    (repo / "params.yaml").write_text("lr: 0.1  # uncommitted edit, kept\nmodel:\n  depth: 3\n")
    before = files(repo)
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "-j",
            "2",
            "-p",
            "lr=0.1,0.2,0.3",
            "-p",
            "model.depth=1,2",
            "--",
            sys.executable,
            "train.py",
        ],
    )
    report = f"sweep table:\n{result.stdout}\nprogress and errors:\n{result.stderr}"
    assert result.exit_code == 1, report  # a point failed
    assert files(repo) == before  # the user's files never changed
    assert git(repo, "worktree", "list").count("\n") == 1
    # Each checkout's snapshot-index cache went with it: only the workspace's own is left.
    assert len(list((repo / ".git" / "xp").glob("snapshot-index.*"))) <= 1
    runs = [xp.get_run(r.id) for r in xp.list_runs()]
    assert len(runs) == 6, report
    sweep_ids = {r.tags["xp.sweep"] for r in runs}
    assert len(sweep_ids) == 1
    by_point = {r.tags["xp.sweep.point"]: r for r in runs}
    assert sorted(by_point) == [f"{i}/6" for i in range(1, 7)]
    for run in runs:
        lr, depth = run.params["lr"], run.params["model.depth"]
        code = git(repo, "show", f"{run.commit}:params.yaml")
        assert code == f"lr: {lr}  # uncommitted edit, kept\nmodel:\n  depth: {depth}\n"
        if lr == 0.2:
            assert run.status == "failed"
            assert run.meta["exit_code"] == 1
        else:
            assert run.status == "finished"
            assert run.metrics["score"] == lr * 100 + depth + 2  # data/ was linked in
    table = result.stdout.splitlines()
    assert table[0].split() == ["#", "run", "status", "lr", "model.depth", "score"]
    assert [line.split()[2] for line in table[1:7]] == ["finished"] * 2 + ["failed"] * 2 + [
        "finished"
    ] * 2
    assert table[7].startswith(f"sweep {sweep_ids.pop()}: 4/6 finished")


def test_random_sweep_is_reproducible_with_its_seed(repo: Path) -> None:
    setup(repo)
    grid = [{"i": i} for i in range(10)]
    assert choose(grid, 3, 7) == choose(grid, 3, 7)
    assert len(choose(grid, 3, None)[0]) == 3
    assert choose(grid, 50, 1)[0] == list(range(10))
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--random",
            "2",
            "--seed",
            "7",
            "-p",
            "lr=0.1,0.3,0.4",
            "-p",
            "model.depth=1,2",
            "--",
            sys.executable,
            "train.py",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "random 2 of 6, seed 7" in result.stderr
    assert len(xp.list_runs()) == 2


def test_bad_sweep_input_fails_before_any_run(repo: Path) -> None:
    setup(repo)
    for args, message in (
        (["-p", "lr=0.1,0.2", "-p", "depht=1,2"], "-p depht: no such param"),
        (["-p", "lr=0.1,0.2", "--", "no-such-program"], "not found on PATH"),
    ):
        argv = ["run", *args] if "--" in args else ["run", *args, "--", sys.executable, "train.py"]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 1
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert xp.list_runs() == []


def test_temp_runs_one_point_without_touching_the_workspace(repo: Path) -> None:
    setup(repo)
    before = files(repo)
    result = CliRunner().invoke(
        cli, ["run", "--temp", "-n", "tmp", "-p", "lr=0.5", "--", sys.executable, "train.py"]
    )
    assert result.exit_code == 0, result.stderr
    assert files(repo) == before
    (run,) = [xp.get_run(r.id) for r in xp.list_runs()]
    assert run.name == "tmp"
    assert run.params["lr"] == 0.5


def test_ctrl_c_stops_every_point_and_starts_no_new_one(repo: Path) -> None:
    import signal
    import subprocess

    (repo / "slow.py").write_text(
        "import time, xp\nxp.log_metric('a', 1)\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    cmd = [sys.executable, "-m", "xp", "run", "-j", "2", "-p", "lr=1,2,3", "--"]
    journal = repo / ".git" / "xp" / "journal"
    with spawned(
        [*cmd, sys.executable, "slow.py"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        wait_for(
            lambda: sum(journal_points(p, "a") for p in journal.glob("*.part")) >= 2,
            "both running points to flush their metric",
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    statuses = [line.split()[2] for line in out.splitlines()[1:4]]
    assert statuses == ["killed", "killed", "not"]  # "not run"
    assert sorted(xp.get_run(r.id).status for r in xp.list_runs()) == ["killed", "killed"]
    assert git(repo, "worktree", "list").count("\n") == 1


def test_a_point_that_cannot_start_is_retried_then_listed_with_its_reason(repo: Path) -> None:
    setup(repo)
    admin = repo / ".git" / "worktrees"
    admin.write_text("a file where git keeps its worktrees: no checkout can be made")
    result = CliRunner().invoke(cli, ["run", "-p", "lr=0.1,0.3", "--", sys.executable, "train.py"])
    assert result.exit_code == 1
    assert result.stderr.count("retrying") == 2  # each point once more
    rows = result.stdout.splitlines()[1:3]
    assert [r.split()[2] for r in rows] == ["error", "error"]  # listed, not lost
    assert "error: git worktree failed" in result.stderr
    assert xp.list_runs() == []
    admin.unlink()


FAILING = """
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
for i in range(30):
    print(f"line {i}")
if p["lr"] == 0.2:
    print("Traceback: lr 0.2 diverged")  # stdout: its place in the log is certain
    sys.exit(3)
"""


def test_a_failed_point_and_temp_show_the_output_tail_and_the_log(repo: Path) -> None:
    (repo / "train.py").write_text(FAILING)
    (repo / "params.yaml").write_text("lr: 0.1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")
    command = ["--", sys.executable, "train.py"]
    result = CliRunner().invoke(cli, ["run", "-p", "lr=0.1,0.2", *command])
    assert result.exit_code == 1
    err = result.stderr
    assert "lr=0.2: failed (exit 3); its last 20 lines of output:" in err
    assert "    Traceback: lr 0.2 diverged" in err
    assert "    line 29" in err
    assert "    line 10" not in err  # only the tail
    log = next(line for line in err.splitlines() if "full output:" in line).split()[3]
    assert "Traceback: lr 0.2 diverged" in Path(log).read_text()
    assert "xp: lr=0.1: " not in err  # a finished point says nothing more
    # --temp exits with the command's own code, as --help says, and shows the tail too.
    result = CliRunner().invoke(cli, ["run", "--temp", "-p", "lr=0.2", *command])
    assert result.exit_code == 3
    assert "    Traceback: lr 0.2 diverged" in result.stderr
    result = CliRunner().invoke(cli, ["run", "--temp", "-p", "lr=0.1", *command])
    assert result.exit_code == 0


def _task(repo: Path, index: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """One task of a Slurm-style array: its own process, the array's environment."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xp",
            "run",
            "--point",
            str(index),
            "--sweep-id",
            "4242",
            "-p",
            "lr=0.1,0.3,0.4",
            "-p",
            "model.depth=1,2",
            "--",
            sys.executable,
            "train.py",
        ],
        cwd=repo,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_point_runs_one_grid_point_of_a_sweep_another_engine_schedules(repo: Path) -> None:
    setup(repo)
    before = files(repo)
    slurm = {"SLURM_JOB_ID": "4250", "SLURM_ARRAY_JOB_ID": "4242", "SLURM_NTASKS": "1"}
    tasks = [_task(repo, i, {**slurm, "SLURM_ARRAY_TASK_ID": str(i)}) for i in (0, 3, 5)]
    outputs = [t.communicate(timeout=120) for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0, 0], outputs
    assert files(repo) == before  # each point ran in a checkout of its own
    got = sorted((xp.get_run(r.id) for r in xp.list_runs()), key=lambda r: r.tags["xp.sweep.point"])
    assert [r.tags["xp.sweep.point"] for r in got] == ["1/6", "4/6", "6/6"]
    assert {r.tags["xp.sweep"] for r in got} == {"4242"}  # one sweep, whatever ran it
    assert [(r.params["lr"], r.params["model.depth"]) for r in got] == [
        (0.1, 1),
        (0.3, 2),
        (0.4, 2),
    ]
    for run, index in zip(got, ("0", "3", "5"), strict=True):
        assert run.meta["engine"] == "slurm"
        assert run.meta["job_id"] == "4242"
        assert run.meta["task_id"] == index
        assert run.meta["host"]
    shown = CliRunner().invoke(cli, ["show", "-w", "tags.xp.sweep = '4242'", "--format", "json"])
    assert shown.exit_code == 0, shown.stderr
    assert len(json.loads(shown.stdout)) == 3


def test_point_and_sweep_id_are_checked_before_any_run(repo: Path) -> None:
    setup(repo)
    for args, message in (
        (["--point", "6"], "--point 6 is outside the grid: its 6 point(s) are 0 to 5"),
        (["--point", "1", "--random", "2"], "--point picks one grid point; drop --random"),
        (["--point", "1", "--sweep-id", "a b"], "--sweep-id 'a b': use 1 to 64 letters"),
    ):
        argv = ["run", *args, "-p", "lr=0.1,0.3,0.4", "-p", "model.depth=1,2"]
        result = CliRunner().invoke(cli, [*argv, "--", sys.executable, "train.py"])
        assert result.exit_code == 1, result.output
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert xp.list_runs() == []


def test_engine_context_from_the_environment() -> None:
    from xp.record.context import engine_context

    assert engine_context({}) == {}
    assert engine_context({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) == {
        "engine": "slurm",
        "job_id": "7",
    }
    assert engine_context({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "2"}) == {
        "engine": "slurm",
        "job_id": "7",
        "task_id": "2",
    }
    assert engine_context({"XP_ENGINE": "k8s", "XP_JOB_ID": "train", "XP_TASK_ID": "3"}) == {
        "engine": "k8s",
        "job_id": "train",
        "task_id": "3",
    }


@pytest.mark.framework
def test_engine_context_inside_a_dask_task() -> None:
    distributed = pytest.importorskip("distributed")
    from xp.record.context import engine_context

    assert engine_context({}) == {}  # dask imported, but this is no task
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.submit(engine_context, {}, key="point-3").result(timeout=60)
        assert got == {"engine": "dask", "job_id": cluster.scheduler_address, "task_id": "point-3"}


def test_repeat_runs_each_point_n_times_and_point_counts_in_the_repeated_grid(
    repo: Path,
) -> None:
    """`--repeat N`: each grid point N runs in a row (N workers of a search that coordinates
    itself); `--point I` with the same `--repeat` picks from that grid, as a task would."""
    setup(repo)
    (repo / "params.yaml").write_text("lr: 0.1\nmodel:\n  depth: 3\n")
    argv = ["run", "--repeat", "2", "-p", "lr=0.1,0.3", "--", sys.executable, "train.py"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    got = sorted((xp.get_run(r.id) for r in xp.list_runs()), key=lambda r: r.tags["xp.sweep.point"])
    assert [(r.tags["xp.sweep.point"], r.params["lr"]) for r in got] == [
        ("1/4", 0.1),
        ("2/4", 0.1),
        ("3/4", 0.3),
        ("4/4", 0.3),
    ]
    assert len({r.tags["xp.sweep"] for r in got}) == 1
    one = ["run", "--repeat", "2", "--point", "2", "--sweep-id", "t1", "-p", "lr=0.1,0.3"]
    result = CliRunner().invoke(cli, [*one, "--", sys.executable, "train.py"])
    assert result.exit_code == 0, result.output
    runs = [xp.get_run(e.id) for e in xp.list_runs()]
    (task,) = [r for r in runs if r.tags["xp.sweep"] == "t1"]
    assert (task.tags["xp.sweep.point"], task.params["lr"]) == ("3/4", 0.3)
    result = CliRunner().invoke(cli, [*one[:4], "4", *one[5:], "--", sys.executable, "train.py"])
    assert result.exit_code == 1
    assert "--point 4 is outside the grid: its 4 point(s) are 0 to 3" in result.stderr
