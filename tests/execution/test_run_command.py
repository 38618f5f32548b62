"""`xp run`: real commands in real repos; signals sent to real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import xp
from tests.helpers import (
    alive,
    fill_disk,
    fsck,
    git,
    journal_points,
    one_line_error,
    spawned,
    wait_for,
    xp_main,
)
from xp.cli import cli
from xp.errors import InvalidValueError
from xp.execution import overrides

TRAIN = """
import sys, time, yaml, xp
p = yaml.safe_load(open("params.yaml"))
with xp.start_run(params={"lr": p["lr"]}) as r:
    for i in range(3):
        xp.log_metric("loss", p["lr"] * (3 - i))
    print("hello from", r.id, flush=True)
    print("to stderr", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def xp_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xp", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def only_run(repo: Path) -> xp.query.resolve.RunView:  # type: ignore[name-defined]
    runs = xp.list_runs(repo)
    assert len(runs) == 1, runs
    return xp.get_run(runs[0].id, path=repo)


def test_run_records_the_command_its_output_and_the_scripts_logging(repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    proc = xp_cli("run", "-n", "first", "--", sys.executable, "train.py", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    got = only_run(repo)
    assert "hello from " + got.id in proc.stdout  # shown live, and the child attached to the run
    assert "to stderr" in proc.stderr
    assert got.name == "first"
    assert got.status == "finished"
    assert got.meta["command"] == [sys.executable, "train.py"]
    assert got.meta["exit_code"] == 0
    assert got.meta["duration"] > 0
    assert got.params == {"lr": 0.1, "model.depth": 3}  # the script's lr, the file's model.depth
    assert list(got.series("loss")["value"]) == pytest.approx([0.3, 0.2, 0.1])
    log = [a for a in got.artifacts if a.path == "logs/xp-run.log"]
    assert log
    assert log[0].size == len(f"hello from {got.id}\nto stderr\n")


def test_non_zero_exit_is_a_failed_run_and_the_exit_code_passes_through(repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    proc = xp_cli("run", "--", sys.executable, "train.py", "3", cwd=repo)
    assert proc.returncode == 3
    got = only_run(repo)
    assert got.status == "failed"
    assert got.meta["exit_code"] == 3
    assert "failed" in proc.stderr.splitlines()[-1]


def test_params_override_is_written_to_the_file_and_recorded(repo: Path) -> None:
    (repo / "params.yaml").write_text(
        "# tuned by hand\nlr: 0.1  # learning rate\nmodel:\n  depth: 3\n"
    )
    script = "import xp\nxp.log_metric('m', 1)\n"
    (repo / "t.py").write_text(script)
    result = CliRunner().invoke(
        cli, ["run", "-p", "lr=0.5", "-p", "model.depth=7", "--", sys.executable, "t.py"]
    )
    assert result.exit_code == 0, result.stderr
    assert "params.yaml: lr 0.1 -> 0.5" in result.stderr
    text = (repo / "params.yaml").read_text()
    assert text == "# tuned by hand\nlr: 0.5  # learning rate\nmodel:\n  depth: 7\n"
    got = only_run(repo)
    assert got.params == {"lr": 0.5, "model.depth": 7}
    assert got.meta["dirty"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "lr"], "must look like KEY=VALUE"),
        (["-p", "=1"], "must look like KEY=VALUE"),
        (["-p", "model.dpth=4"], "did you mean model.depth"),
        (["-p", "lr.x=4"], "no such param"),
    ],
)
def test_bad_overrides_are_one_line_errors_and_change_nothing(
    repo: Path, args: list[str], message: str
) -> None:
    before = (repo / "params.yaml").read_bytes()
    result = CliRunner().invoke(cli, ["run", *args, "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert (repo / "params.yaml").read_bytes() == before
    assert xp.list_runs(repo) == []


def test_plus_adds_a_nested_key(repo: Path) -> None:
    changes = overrides.apply(
        repo,
        ("params.yaml",),
        overrides.parse(["+model.width=64", "+opt.name=adam"]),
        {"model.width": 64, "opt.name": "adam"},
    )
    assert [c.added for c in changes] == [True, True]
    assert (repo / "params.yaml").read_text() == (
        "lr: 0.1\nmodel:\n  depth: 3\n  width: 64\nopt:\n  name: adam\n"
    )


def test_override_values_are_yaml_scalars_and_commas_make_axes() -> None:
    parsed = overrides.parse(["a=1", "b=1e-3", "c=yes", "d=x\\,y", "e=0.1,0.01", "f=null"])
    assert [o.values for o in parsed] == [(1,), (0.001,), (True,), ("x,y",), (0.1, 0.01), (None,)]
    with pytest.raises(InvalidValueError, match="given twice"):
        overrides.parse(["a=1", "a=2"])


def test_json_params_file(repo: Path) -> None:
    (repo / "p.json").write_text('{"opt": {"lr": 0.1}, "seed": 1}\n')
    overrides.apply(repo, ("p.json",), overrides.parse(["opt.lr=0.3"]), {"opt.lr": 0.3})
    assert (repo / "p.json").read_text() == '{\n  "opt": {\n    "lr": 0.3\n  },\n  "seed": 1\n}\n'


def test_a_command_that_does_not_exist_records_nothing(repo: Path) -> None:
    for cmd in (["no-such-program-xp"], ["./missing.sh"]):
        result = CliRunner().invoke(cli, ["run", "--", *cmd])
        assert result.exit_code == 1
        assert "does not exist" in result.stderr or "not found" in result.stderr
    (repo / "plain.py").write_text("print(1)\n")
    result = CliRunner().invoke(cli, ["run", "--", "./plain.py"])
    assert "not executable" in result.stderr
    assert "python ./plain.py" in result.stderr
    assert xp.list_runs(repo) == []


def _pids(repo: Path) -> list[int]:
    """The pids the sleeper wrote (the script, its child), once the line is complete."""
    path = repo / "pids.txt"
    wait_for(lambda: path.exists() and path.read_text().endswith("\n"), f"{path} to be written")
    return [int(p) for p in path.read_text().split()]


def _flushed(repo: Path, key: str) -> bool:
    """A part (what the command logged into xp run's run) holds a point of metric ``key``."""
    parts = (repo / ".git" / "xp" / "journal").glob("*.part")
    return any(journal_points(part, key) for part in parts)


SLEEPER = """
import os, subprocess, sys, time, xp
xp.log_metric("alive", 1)
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open("pids.txt", "w").write(f"{os.getpid()} {kid.pid}\\n")
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigkill_of_xp_run_takes_its_children_down_and_the_run_is_recovered(repo: Path) -> None:
    (repo / "sleeper.py").write_text(SLEEPER)
    cmd = [sys.executable, "-m", "xp", "run", "-n", "victim", "--", sys.executable, "sleeper.py"]
    with spawned(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        pids = _pids(repo)
        wait_for(lambda: _flushed(repo, "alive"), "the command's metric to be flushed")
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in pids), "the command and its child to die")
    out = xp_cli("recover", cwd=repo)
    assert "crashed" in out.stderr + out.stdout
    got = only_run(repo)
    assert got.status == "crashed"
    assert got.name == "victim"
    assert got.metrics == {"alive": 1}


def test_ctrl_c_records_a_killed_run(repo: Path) -> None:
    (repo / "sleeper.py").write_text(SLEEPER)
    cmd = [sys.executable, "-m", "xp", "run", "--", sys.executable, "sleeper.py"]
    with spawned(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        pids = _pids(repo)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    got = only_run(repo)
    assert got.status == "killed"
    assert got.metrics == {"alive": 1}
    wait_for(lambda: not any(alive(p) for p in pids), "the command and its child to die")
    assert not list((repo / ".git" / "xp" / "journal").iterdir())


def test_run_in_a_subfolder_records_its_cwd(repo: Path) -> None:
    sub = repo / "src"
    sub.mkdir()
    (sub / "t.py").write_text("import os, xp\nxp.log_param('here', os.getcwd())\n")
    os.chdir(sub)
    result = CliRunner().invoke(cli, ["run", "--", sys.executable, "t.py"])
    assert result.exit_code == 0, result.stderr
    got = only_run(repo)
    assert got.meta["cwd"] == "src"
    assert got.params["here"] == str(sub)


LINGERER = """
import os, signal, subprocess, sys, time, xp
print("epoch 1: loss 0.5", flush=True)
xp.log_metric("alive", 1)
kid = subprocess.Popen([sys.executable, "-c", '''
import signal, sys, time, xp
def stop(signum, frame):
    time.sleep(0.1)  # a slow shutdown: it still logs
    xp.log_metric("late", 2)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
xp.log_metric("kid", 1)
open("kid-ready", "w").close()
time.sleep(600)
'''], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # holds no pipe of xp run's
while not os.path.exists("kid-ready"):  # its handler is in place
    time.sleep(0.01)
open("pids.txt", "w").write(f"{os.getpid()} {kid.pid}\\n")
time.sleep(float(sys.argv[1]))
"""


def test_processes_left_behind_finish_logging_before_the_run_is_recorded(repo: Path) -> None:
    """The command exits at once; the process it started logs on its way out (SIGTERM)."""
    (repo / "lingerer.py").write_text(LINGERER)
    code = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "lingerer.py", "0.5"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert code.returncode == 0, code.stderr
    got = only_run(repo)
    assert got.metrics == {"alive": 1, "kid": 1, "late": 2}
    assert "still logs" not in code.stderr
    assert not list((repo / ".git" / "xp" / "journal").iterdir())  # every part merged


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_killed_xp_run_keeps_its_output_and_every_process_s_values(repo: Path) -> None:
    (repo / "lingerer.py").write_text(LINGERER)
    cmd = [sys.executable, "-m", "xp", "run", "--", sys.executable, "lingerer.py", "600"]
    with spawned(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        pids = _pids(repo)
        wait_for(lambda: _flushed(repo, "kid"), "the child's metric to be flushed")
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in pids), "the command and its child to die")
        journal = repo / ".git" / "xp" / "journal"
        wait_for(lambda: _unlocked(next(journal.glob("*.journal"))), "the guard to let go")
    out = xp_cli("show", cwd=repo)
    assert "recovered run" in out.stderr
    got = only_run(repo)
    assert got.status == "crashed"
    assert got.metrics == {"alive": 1, "kid": 1, "late": 2}  # the slow one was waited for
    log = [a for a in got.artifacts if a.path == "logs/xp-run.log"]
    assert len(log) == 1, got.artifacts
    code, _text, err = xp_main("get", got.id, "logs/xp-run.log", "-o", "got", cwd=repo)
    assert code == 0, err
    assert "epoch 1: loss 0.5\n" in (repo / "got" / "logs" / "xp-run.log").read_text()
    assert not list(journal.iterdir())


def _unlocked(path: Path) -> bool:
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_the_next_command_cleans_what_a_killed_sweep_left(repo: Path) -> None:
    (repo / "slow.py").write_text(
        "import os, time, xp\nxp.log_metric('a', 1)\n"
        "open(f'{os.getpid()}.pid', 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    git(repo, "add", "slow.py")
    git(repo, "commit", "-qm", "slow")
    cmd = [sys.executable, "-m", "xp", "run", "-j", "2", "-p", "lr=1,2", "--"]
    tmp = repo / ".git" / "xp" / "tmp"
    with spawned(
        [*cmd, sys.executable, "slow.py"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        wait_for(lambda: len(list(tmp.glob("*/sweep-*/*.pid"))) == 2, "both points to be running")
        pids = [int(p.read_text()) for p in tmp.glob("*/sweep-*/*.pid")]
        assert git(repo, "worktree", "list").count("\n") == 3
        proc.kill()
        proc.wait()
        wait_for(lambda: not any(alive(p) for p in pids), "the points to die")
    out = xp_cli("show", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert git(repo, "worktree", "list").count("\n") == 1  # pruned
    assert [p.name for p in tmp.iterdir()] == []  # the dead process's folder is gone
    assert sorted(xp.get_run(r.id, path=repo).status for r in xp.list_runs(repo)) == [
        "crashed",
        "crashed",
    ]


PARAMS = "".join(f"layer_{i}: {i}  # a long file: a torn write would show\n" for i in range(400))


def _params_json(lr: float) -> str:
    """A params file big enough (8 MB) that its write takes a while: kills land inside it."""
    return json.dumps({"lr": lr, "weights": "w" * (8 << 20)}, indent=2) + "\n"


def _kill_when(proc: subprocess.Popen[str], folder: Path, random_delay: float | None) -> bool:
    """SIGKILL ``proc`` after ``random_delay`` s, or (None) the moment a temp file of
    params.json appears; True if it was killed while that temp file existed."""
    import random

    if random_delay is not None:
        time.sleep(random.uniform(0, random_delay))
        os.killpg(proc.pid, signal.SIGKILL)
        return False
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(n.startswith(".params.json.xp-") for n in os.listdir(folder)):
            os.killpg(proc.pid, signal.SIGKILL)
            return True
    return False


def test_sigkill_during_xp_run_p_leaves_the_old_params_file_or_the_new_one(repo: Path) -> None:
    """Kill ``xp run -p`` at random times and inside its write (until that happened at least
    once): params.json is always one whole version, and what a killed writer left beside it
    goes with the next write."""
    trials = int(os.environ.get("XP_KILL_TRIALS", "6"))
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("params: [params.json]\n")
    params = repo / "params.json"
    params.write_text(_params_json(0.5))
    versions = {params.read_text()}
    hits = n = 0
    while n < trials or (not hits and n < 5 * trials):
        lr = n + 2
        cmd = [sys.executable, "-m", "xp", "run", "-p", f"lr={lr}", "--", sys.executable, "-c", ""]
        with spawned(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
            hits += _kill_when(proc, repo, None if n % 2 == 0 else 1.5)
            proc.wait()
        versions.add(_params_json(lr))
        assert params.read_text() in versions, f"trial {n}: a torn params.json"
        n += 1
    assert hits, f"no kill in {n} trials landed inside the write"
    result = CliRunner().invoke(cli, ["run", "-p", "lr=99", "--", sys.executable, "-c", ""])
    assert result.exit_code == 0, result.stderr
    assert params.read_text() == _params_json(99)
    assert [n for n in os.listdir(repo) if n.startswith(".params")] == []  # litter swept


def test_a_full_disk_leaves_the_params_file_whole(small_disk: Path) -> None:
    root = small_disk / "proj"
    root.mkdir()
    git(root, "init", "-q")
    (root / "params.yaml").write_text("lr: 0.1\n" + PARAMS)
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    fill_disk(small_disk)
    code, _out, err = xp_main("run", "-p", "lr=0.5", "--", sys.executable, "-c", "", cwd=root)
    msg = one_line_error(code, err)
    assert "params.yaml: No space left on device; free disk space" in msg
    assert (root / "params.yaml").read_text() == "lr: 0.1\n" + PARAMS
    assert [n for n in os.listdir(root) if n.startswith(".params")] == []
    assert xp.list_runs(root) == []
    (small_disk / "filler").unlink()
    code, _out, err = xp_main("run", "-p", "lr=0.5", "--", sys.executable, "-c", "", cwd=root)
    assert code == 0, err
    assert (root / "params.yaml").read_text() == "lr: 0.5\n" + PARAMS
    fsck(root)


NESTED = """
import xp
with xp.start_run(name="outer", experiment="vision", description="try the wider net"):
    xp.log_metric("acc", 0.5)
    with xp.start_run(name="child", nested=True) as child:
        xp.log_metric("acc", 0.7)
"""


def test_start_run_experiment_description_and_nested_runs_under_xp_run(repo: Path) -> None:
    (repo / "train.py").write_text(NESTED)
    result = CliRunner().invoke(cli, ["run", "--", sys.executable, "train.py"])
    assert result.exit_code == 0, result.stderr
    runs = {run.name: run for run in (xp.get_run(r.id) for r in xp.list_runs())}
    outer, child = runs["outer"], runs["child"]
    assert outer.experiment == "vision"  # the script's, not dropped by xp run
    assert outer.meta["message"] == "try the wider net"
    assert child.experiment == "vision"  # a nested run belongs where its parent does
    assert child.meta["parent"] == outer.id
    shown = CliRunner().invoke(
        cli, ["show", "-w", f"parent = '{outer.id}'", "-f", "csv", "-c", "name"]
    )
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [f"{child.id},child"]
    # xp run's own -e wins over the script's, and a nested run follows it too.
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "-e",
            "cli-exp",
            "--",
            sys.executable,
            "-c",
            NESTED.replace('experiment="vision", ', ""),
        ],
    )
    assert result.exit_code == 0, result.stderr
    latest = [xp.get_run(r.id) for r in xp.list_runs()][:2]
    assert {r.experiment for r in latest} == {"cli-exp"}


WAITING = """
import pathlib, sys, time, yaml, xp
p = yaml.safe_load(open("params.yaml"))  # read at start, as a training script does
pathlib.Path(sys.argv[1], f"started-{p['lr']}").write_text("")
while not pathlib.Path(sys.argv[1], "go").exists():
    time.sleep(0.02)
p2 = yaml.safe_load(open("params.yaml"))  # and again later (a config reloaded per epoch)
with xp.start_run():
    xp.log_metric("lr_seen_first", p["lr"])
    xp.log_metric("lr_seen_last", p2["lr"])
"""


def test_concurrent_in_place_runs_in_one_clone_are_isolated(repo: Path, tmp_path: Path) -> None:
    # The case: several `xp run -p` in one shared clone edited the same params file
    # under each other's commands (wrong params recorded, points failing).
    (repo / "wait.py").write_text(WAITING)
    git(repo, "add", "wait.py")
    git(repo, "commit", "-qm", "wait")
    signals = tmp_path / "signals"
    signals.mkdir()
    lrs = ["0.5", "0.25", "0.125"]
    procs = []
    try:
        for lr in lrs:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "xp",
                        "run",
                        "-p",
                        f"lr={lr}",
                        "--",
                        sys.executable,
                        "wait.py",
                        str(signals),
                    ],
                    cwd=repo,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            wait_for(lambda lr=lr: (signals / f"started-{lr}").exists(), f"point lr={lr}")
        (signals / "go").write_text("")
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    isolated = [err for _out, err in outputs if "another `xp run` was using this work tree" in err]
    assert len(isolated) == 2  # the first ran in place, the two others beside it
    runs = [xp.get_run(r.id, path=repo) for r in xp.list_runs(repo)]
    assert len(runs) == 3
    for run in runs:
        lr = run.params["lr"]
        assert run.metrics["lr_seen_first"] == lr
        assert run.metrics["lr_seen_last"] == lr  # nobody changed its file under it
    assert sorted(r.params["lr"] for r in runs) == [0.125, 0.25, 0.5]
    assert "lr: 0.5" in (repo / "params.yaml").read_text()  # the in-place run's -p stays
    fsck(repo)


def test_a_plain_run_beside_an_editing_one_is_isolated_too(repo: Path, tmp_path: Path) -> None:
    from xp.execution.run_command import claim_workspace
    from xp.gitstore.repo import find_repo

    holder = claim_workspace(find_repo(repo), edits=True)  # an `xp run -p` in flight
    assert holder is not None
    try:
        (repo / "train.py").write_text(TRAIN)
        proc = xp_cli("run", "--", sys.executable, "train.py", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        assert "ran in a temporary checkout" in proc.stderr
        assert only_run(repo).params["lr"] == 0.1
    finally:
        holder.close()
    assert claim_workspace(find_repo(repo), edits=False) is not None  # released
