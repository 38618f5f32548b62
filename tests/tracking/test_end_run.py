"""Ending a run (issue 10): statuses in any case, names checked at the call, and an end_run
that fails keeps everything for a retry in the process or ``xp recover`` after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import one_line_error, xp_main
from xp.errors import InvalidKeyError, InvalidValueError, RunNotRecordedError
from xp.gitstore.repo import find_repo
from xp.tracking import fluent
from xp.tracking.recover import recover, recover_all


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("FAILED", "failed"),
        ("Finished", "finished"),
        ("KILLED", "killed"),
        (" crashed ", "crashed"),
    ],
)
def test_mlflow_spellings_of_statuses(repo: Path, given: str, recorded: str) -> None:
    run = xp.start_run()
    xp.end_run(status=given)
    assert xp.get_run(run.id).status == recorded


@pytest.mark.parametrize("status", ["RUNNING", "done", "", None, 3])
def test_a_bad_status_changes_nothing(repo: Path, status: object) -> None:
    run = xp.start_run()
    with pytest.raises(InvalidValueError, match="finished, failed, killed, crashed"):
        xp.end_run(status=status)  # type: ignore[arg-type]
    assert xp.active_run() is run.run  # still active, still logging
    xp.log_metric("m", 1.0)
    xp.end_run()
    assert xp.get_run(run.id).metrics == {"m": 1.0}


@pytest.mark.parametrize("name", ["a\0b", "a\nb", "tab\there", "\x1b]0;x\x07", "s\udcff", " "])
def test_run_names_that_git_or_a_terminal_would_choke_on_are_refused(repo: Path, name: str) -> None:
    with pytest.raises(InvalidValueError) as info:
        xp.start_run(name=name)
    assert "\n" not in str(info.value)
    assert xp.active_run() is None
    with pytest.raises(InvalidValueError):
        xp.start_run(experiment=name)


def test_metric_names_that_would_collide_as_files_are_refused(repo: Path) -> None:
    with xp.start_run() as run:
        xp.log_metric("x", 1.0)
        with pytest.raises(InvalidKeyError, match=r"\.tsv"):
            xp.log_metric("x.tsv/y", 2.0)
        xp.log_metric("y/x.tsv", 3.0)  # a last part may end in .tsv: its file is x.tsv.tsv
    assert xp.get_run(run.id).metrics == {"x": 1.0, "y/x.tsv": 3.0}


@pytest.mark.parametrize(
    "call",
    [
        lambda: xp.set_tag("t", "a\udcffb"),
        lambda: xp.log_param("p", "\ud800"),
        lambda: xp.log_param("p", ["ok", "\udcff"]),
        lambda: xp.log_text("x", "notes\udcff.txt"),
        lambda: xp.log_text("bad \udcff text", "notes.txt"),
    ],
)
def test_text_that_is_not_unicode_is_refused_at_the_call(repo: Path, call: object) -> None:
    with xp.start_run() as run:
        with pytest.raises(InvalidValueError, match="not valid Unicode"):
            call()  # type: ignore[operator]
        xp.log_metric("still", 1.0)
    assert xp.get_run(run.id).metrics == {"still": 1.0}


def test_undecodable_bytes_in_argv_are_escaped_with_a_warning(repo: Path) -> None:
    script = "import sys, xp\nwith xp.start_run() as r:\n    xp.log_metric('m', 1)\nprint(r.id)\n"
    (repo / "argv.py").write_text(script)
    arg = os.fsencode("data-") + b"\xff\xfe.csv"
    proc = subprocess.run(
        [sys.executable, "argv.py", arg], cwd=repo, capture_output=True, env=os.environ.copy()
    )
    assert proc.returncode == 0, proc.stderr
    got = xp.get_run(proc.stdout.decode().strip())
    assert got.meta["command"][-1] == "data-\\xff\\xfe.csv"
    assert any("not UTF-8" in w for w in got.meta["warnings"])


def test_logging_to_an_ended_run_raises(repo: Path) -> None:
    run = xp.start_run()
    run.log_metric("m", 1.0)
    xp.end_run()
    with pytest.raises(xp.XPError, match="has ended"):
        run.log_metric("m", 2.0)


def _block_ref(repo: Path) -> Path:
    """Make the run's ref impossible to create: a file where refs/xp/runs/ must be."""
    refs = repo / ".git" / "refs" / "xp"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "runs").write_text("in the way\n")
    return refs / "runs"


def test_a_failed_end_run_is_retried_by_the_next_end_run(repo: Path) -> None:
    blocker = _block_ref(repo)
    run = xp.start_run(name="retry-me")
    xp.log_metric("loss", 0.5)
    with pytest.raises(RunNotRecordedError, match=r"xp\.end_run\(\) again") as info:
        xp.end_run(status="FAILED")
    assert isinstance(info.value.__cause__, xp.XPError)
    journal = repo / ".git" / "xp" / "journal" / f"{run.id}.journal"
    assert journal.exists()  # written out at once, with its E line
    assert xp.active_run() is None
    assert recover(find_repo()) == []  # this process still holds it: not a dead run
    blocker.unlink()
    commit = xp.end_run()  # no active run: retries the one that failed
    assert commit is not None
    got = xp.get_run(run.id)
    assert (got.status, got.metrics) == ("failed", {"loss": 0.5})  # the first attempt's status
    assert not journal.exists()
    assert xp.end_run() is None  # nothing left to retry
    assert not list((repo / ".git" / "objects" / "pack").glob("*.keep"))


def test_a_failed_end_run_is_recovered_after_the_process_ends(repo: Path) -> None:
    blocker = _block_ref(repo)
    script = (
        "import xp, time\n"
        "r = xp.start_run(name='dies-unrecorded')\n"
        "xp.log_params({'a': 1})\n"
        "for i in range(5): xp.log_metric('m', i)\n"
        "print(r.id, flush=True)\n"
        "try:\n    xp.end_run()\nexcept xp.XPError as e:\n    print(type(e).__name__)\n"
    )
    (repo / "s.py").write_text(script)
    proc = subprocess.run([sys.executable, "s.py"], cwd=repo, capture_output=True, text=True)
    run_id, error = proc.stdout.split()
    assert error == "RunNotRecordedError"
    assert "is not recorded" in proc.stderr or "was not recorded" in proc.stderr
    blocker.unlink()
    code, out, err = xp_main("recover", cwd=repo)
    assert code == 0, err
    assert f"recovered {run_id} (finished)" in out
    got = xp.get_run(run_id)
    assert got.params == {"a": 1}
    assert list(got.series("m")["value"]) == [0, 1, 2, 3, 4]


def test_a_journal_that_can_never_be_committed_is_set_aside_once(repo: Path) -> None:
    jdir = repo / ".git" / "xp" / "journal"
    run = xp.start_run(name="doomed")
    xp.log_metric("m", 1.0)
    run.flush()
    run.journal.close(remove=False)  # the process "dies"
    fluent._stack.clear()
    path = jdir / f"{run.id}.journal"
    # an older xp let these two names in: their series cannot both be files
    from xp.record.journal import seal

    with open(path, "ab") as fh:
        fh.write(seal("M\tx\t1\t1\t1.0") + seal("M\tx.tsv/y\t2\t3\t1.0"))
    code, out, err = xp_main("show", cwd=repo)
    assert code == 0, err  # never blocks other commands
    assert err.count("cannot be recorded") == 1
    assert "both a file and a folder" in err
    failed = jdir / f"{run.id}.failed"
    assert failed.exists()
    assert not path.exists()
    assert failed.read_bytes().splitlines()[-1].startswith(b"X\t")
    code, out, err = xp_main("show", cwd=repo)
    assert "cannot be recorded" not in err  # said once
    code, out, err = xp_main("recover", "--retry-failed", cwd=repo)
    assert f"retrying {run.id}" in out
    assert "cannot be recorded" in err
    assert failed.exists()


def test_recovery_reports_damaged_lines_and_records_the_rest(repo: Path) -> None:
    run = xp.start_run(name="flipped")
    for i in range(3):
        xp.log_metric("loss", 0.5 + i, step=i)
        run.flush()  # a block per flush: the second one is damaged below
    journal = run.journal.path
    run.journal.close(remove=False)
    fluent._stack.clear()
    data = bytearray(journal.read_bytes())
    second = data.index(b"\t1\t1.5\t")  # the second block's only point: step 1, value 1.5
    data[second + 3] ^= 0x01  # 1.5 -> 0.5: a valid number, a different value
    journal.write_bytes(bytes(data))
    result = recover_all(find_repo())
    assert result.recovered == [(run.id, "crashed")]
    assert result.damaged == [(run.id, 1)]
    got = xp.get_run(run.id)
    assert list(got.series("loss")["value"]) == [0.5, 2.5]  # dropped, never replayed as 0.5
    assert any("checksum" in w for w in got.meta["warnings"])


def test_a_version_2_journal_left_by_an_older_xp_is_recovered(repo: Path) -> None:
    """A run killed under xp before journal version 3 left ``H`` and ``M`` lines (times in
    seconds): this xp records it with every point, as that xp would have."""
    import json

    from xp.record.journal import line, seal

    run = xp.start_run(name="old-journal")
    xp.log_param("lr", 0.1)
    run.flush()
    journal = run.journal.path
    run.journal.close(remove=False)
    fluent._stack.clear()
    first, rest = journal.read_bytes().split(b"\n", 1)
    header = json.loads(first.split(b"\t")[1])
    points = [("loss", 0.5, 0, 1795000000.123), ("loss", 2**53 + 1, 1, 1795000000.5)]
    points += [("acc", float("nan"), -3, 1795000001.0)]
    v2 = line("H", {**header, "journal": 2}) + rest
    v2 += b"".join(seal(f"M\t{k}\t{v!r}\t{s}\t{t!r}") for k, v, s, t in points)
    journal.write_bytes(v2)
    assert recover_all(find_repo()).recovered == [(run.id, "crashed")]
    got = xp.get_run(run.id)
    assert got.params == {"lr": 0.1}
    assert list(got.series("loss")["step"]) == [0, 1]
    assert got.series("loss")["value"][0] == 0.5
    assert got.metrics["loss"] == 2**53 + 1  # exact: an int past 2**53 stays an int
    assert list(got.series("acc")["step"]) == [-3]


def test_one_line_error_when_a_value_is_refused_on_the_cli(repo: Path) -> None:
    code, _out, err = xp_main("commit", "-n", "a\x1b[31mred", cwd=repo)
    assert "control character" in one_line_error(code, err)
