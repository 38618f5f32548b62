"""`xp run --executor slurm`: the job-array script, checked by what it says and by running it.

sbatch is not installed here (no Slurm controller can run on this machine), so the script is
not submitted; each array task is run as Slurm would run it: bash, in a fresh folder, with
the SLURM_* variables an array task gets, against a real git server (git daemon).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import one_line_error, server_runs, xp_main
from tests.sharing.test_e2e import _env, daemon, sh, xp_

__all__ = ["daemon"]  # the git server fixture, shared with the end-to-end tests

TRAIN = """
import yaml, xp
p = yaml.safe_load(open("params.yaml"))
with xp.start_run():
    xp.log_metric("score", p["lr"] * 10 + p["depth"])
"""


def _project(tmp_path: Path, url: str) -> Path:
    a = tmp_path / "a"
    sh(tmp_path, "git", "clone", "-q", url, str(a))
    (a / "train.py").write_text(TRAIN)
    (a / "params.yaml").write_text("lr: 0.1\ndepth: 1\n")
    xp_(a, "init")
    xp_(a, "remote", "add", "store", str(tmp_path / "store"), "--default")
    sh(a, "git", "add", ".")
    sh(a, "git", "commit", "-qm", "project")
    sh(a, "git", "push", "-q", "origin", "HEAD:refs/heads/main")
    return a


def _dry_run(a: Path, daemon: str) -> str:
    args = ["run", "--executor", "slurm", "--dry-run", "--sweep-id", "s1"]
    args += ["-p", "lr=0.1,0.2", "-p", "depth=1,2", "--", "python", "train.py"]
    script = xp_(a, *args)
    commit = sh(a, "git", "rev-parse", "HEAD").strip()
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=xp-s1\n#SBATCH --array=0-3\n")
    assert f"commit={commit}\n" in script
    assert "git fetch --quiet origin refs/xp/sweeps/s1\n" in script
    assert "\npoint=$SLURM_ARRAY_TASK_ID\n" in script
    assert '--point "$point" --sweep-id s1 -p lr=0.1,0.2 -p depth=1,2' in script
    assert "-- python train.py" in script
    assert '"$xp" push origin\nexit "$status"\n' in script  # the run goes even if CMD failed
    assert not subprocess.run(["git", "ls-remote", daemon, "refs/xp/*"], capture_output=True).stdout
    return script


def test_dry_run_prints_the_job_array_script(tmp_path: Path, daemon: str) -> None:
    _dry_run(_project(tmp_path, daemon), daemon)


def test_a_repeated_sweep_is_an_array_of_every_repeat(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    args = ["run", "--executor", "slurm", "--dry-run", "--sweep-id", "s2", "--repeat", "3"]
    script = xp_(a, *args, "-p", "lr=0.1,0.2", "--", "python", "train.py")
    assert "#SBATCH --array=0-5\n" in script
    assert '--point "$point" --sweep-id s2 --repeat 3 -p lr=0.1,0.2 \\\n' in script


@pytest.mark.slow
def test_the_dry_run_scripts_tasks_record_one_sweep(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    script = _dry_run(a, daemon)
    commit = sh(a, "git", "rev-parse", "HEAD").strip()
    # What a submission pushes first (dry-run pushes nothing): the sweep's commit.
    sh(a, "git", "push", "-q", "origin", f"{commit}:refs/xp/sweeps/s1")
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    for task in range(4):
        env = {
            **_env(),
            "SLURM_JOB_ID": str(900 + task),
            "SLURM_ARRAY_JOB_ID": "900",
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_NTASKS": "1",
            "TMPDIR": str(tmp_path),
        }
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        proc = subprocess.run(
            ["bash", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # A requeued task whose point is on the remote already records nothing new.
    proc = subprocess.run(
        ["bash", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "xp: point 3 is on" in proc.stderr
    assert "(an earlier attempt pushed it)" in proc.stderr
    # A colleague's clone sees the four points as one sweep, each with its Slurm task.
    b = tmp_path / "b"
    sh(tmp_path, "git", "clone", "-q", daemon, str(b))
    xp_(b, "init")
    sh(b, "git", "fetch", "-q", "origin")
    import json

    shown = json.loads(xp_(b, "show", "--all", "-w", "tags.xp.sweep = 's1'", "--format", "json"))
    assert len(shown) == 4
    import xp

    runs = [xp.get_run(r["run_id"], path=b) for r in shown]
    got = sorted((r.meta["task_id"], r.params["lr"], r.params["depth"]) for r in runs)
    assert got == [("0", 0.1, 1), ("1", 0.1, 2), ("2", 0.2, 1), ("3", 0.2, 2)]
    assert {(r.meta["engine"], r.meta["job_id"]) for r in runs} == {("slurm", "900")}
    assert {r.meta["baseline"] for r in runs} == {commit}  # the sweep's code, exactly
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("xp-s1-")]  # cleaned up


def test_submitting_needs_sbatch_and_a_committed_work_tree(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    env_path = os.environ["PATH"]
    argv = ["run", "--executor", "slurm", "-p", "lr=0.1,0.2", "--", "python", "train.py"]
    bin_dir = tmp_path / "bin"  # git and nothing else: no sbatch
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")
    try:
        os.environ["PATH"] = str(bin_dir)
        msg = one_line_error(*xp_main(*argv, cwd=a)[::2])
    finally:
        os.environ["PATH"] = env_path
    assert "sbatch is not on PATH" in msg
    (a / "params.yaml").write_text("lr: 0.5\ndepth: 1\n")
    msg = one_line_error(*xp_main(*argv[:3], "--dry-run", *argv[3:], cwd=a)[::2])
    assert "the work tree has changes the commit lacks" in msg
    msg = one_line_error(*xp_main("run", "--dry-run", "--", "python", "x.py", cwd=a)[::2])
    assert "add --executor slurm" in msg


# Slurm cannot run here: this stands in for sbatch (mock only what cannot run), running the
# array's tasks one after the other, each as Slurm would: bash, its SLURM_* variables.
SBATCH = """#!/bin/bash
set -eu
[ "$1" = --parsable ] || exit 2
script=$2
range=$(sed -n 's/^#SBATCH --array=//p' "$script")
for task in $(seq "${range%-*}" "${range#*-}"); do
  SLURM_JOB_ID=$((700 + task)) SLURM_ARRAY_JOB_ID=700 SLURM_ARRAY_TASK_ID=$task \\
    SLURM_NTASKS=1 bash "$script" > "$SBATCH_LOG_DIR/task-$task.out" 2>&1
done
echo "700;cluster"
"""


@pytest.mark.slow
def test_submit_pushes_the_code_and_hands_the_script_to_sbatch(tmp_path: Path, daemon: str) -> None:
    a = _project(tmp_path, daemon)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = {**_env(), "SBATCH_LOG_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "xp",
            "run",
            "--executor",
            "slurm",
            "--sweep-id",
            "s2",
            "-p",
            "lr=0.1,0.2",
            "--",
            "python",
            "train.py",
        ],
        cwd=a,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sweep s2: 2 point(s) submitted as Slurm job 700" in proc.stderr
    assert (a / ".git" / "xp" / "slurm" / "xp-s2.sbatch").is_file()
    commit = sh(a, "git", "rev-parse", "HEAD").strip()
    refs = subprocess.run(["git", "ls-remote", daemon], capture_output=True, text=True).stdout
    assert f"{commit}\trefs/xp/sweeps/s2" in refs
    assert len(server_runs(daemon)) == 2, [
        (p.name, p.read_text()) for p in tmp_path.glob("task-*.out")
    ]
