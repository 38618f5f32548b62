"""A full disk at every step of a run's life (issue 10): the call that needs the disk fails
with one clear error, nothing acknowledged is lost, and freeing space is all it takes."""

from __future__ import annotations

import time

import pytest

import xp
from tests.helpers import SmallDisk, wait_for, xp_main
from xp.errors import RunNotRecordedError, StorageError
from xp.record import journal
from xp.tracking import fluent


def test_start_run_on_a_full_disk_fails_cleanly(small_disk_repo: SmallDisk) -> None:
    small_disk_repo.fill()
    with pytest.raises(StorageError) as info:
        xp.start_run()
    assert "\n" not in str(info.value)
    assert xp.active_run() is None
    small_disk_repo.free()
    with xp.start_run() as run:
        xp.log_metric("m", 1.0)
    assert xp.get_run(run.id).metrics == {"m": 1.0}


def test_log_artifact_on_a_full_disk_refuses_the_file_not_the_run(
    small_disk_repo: SmallDisk,
) -> None:
    out = small_disk_repo.root / "out"
    out.mkdir()
    (out / "model.bin").write_bytes(b"m" * 200_000)
    with xp.start_run() as run:
        xp.log_metric("before", 1.0)
        small_disk_repo.fill()
        with pytest.raises(StorageError, match="free disk space"):
            xp.log_artifact(out / "model.bin")
        small_disk_repo.free()
        xp.log_metric("after", 2.0)
    got = xp.get_run(run.id)
    assert got.metrics == {"before": 1.0, "after": 2.0}
    assert got.artifacts == ()


@pytest.mark.parametrize("journaled", [True, False], ids=["journaled", "short-run"])
def test_end_run_on_a_full_disk_keeps_the_run_for_a_retry(
    small_disk_repo: SmallDisk, journaled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not journaled:  # a short run: no flush before the disk fills, however loaded the machine
        monkeypatch.setattr(journal.flusher, "register", lambda run: None)
    run = xp.start_run(name="full")
    for i in range(50):
        xp.log_metric("loss", 1.0 / (i + 1), step=i)
    xp.log_param("lr", 0.1)
    if journaled:
        run.flush()
    small_disk_repo.fill()
    with pytest.raises(RunNotRecordedError, match="No space left") as info:
        xp.end_run()
    kept = "is kept" in str(info.value)
    assert kept == journaled  # no journal yet and no space to write one: memory holds it
    small_disk_repo.free()
    assert xp.end_run() is not None
    got = xp.get_run(run.id)
    assert got.params == {"lr": 0.1}
    assert len(got.series("loss")) == 50


def test_a_dead_run_is_recovered_once_space_is_freed(small_disk_repo: SmallDisk) -> None:
    run = xp.start_run(name="dead")
    for i in range(20):
        xp.log_metric("loss", float(i), step=i)
    run.flush()
    run.journal.close(remove=False)  # the process dies
    fluent._stack.clear()
    small_disk_repo.fill()
    code, _out, err = xp_main("show", cwd=small_disk_repo.root)
    assert code == 0, err  # recovery never blocks a command
    assert "not recorded yet" in err
    assert "No space left" in err
    small_disk_repo.free()
    code, out, err = xp_main("recover", cwd=small_disk_repo.root)
    assert f"recovered {run.id} (crashed)" in out, err
    assert len(xp.get_run(run.id).series("loss")) == 20


def test_journal_writes_cut_by_a_full_disk_are_never_replayed_twice(
    small_disk_repo: SmallDisk, capfd: pytest.CaptureFixture[str]
) -> None:
    run = xp.start_run(name="flaky-disk")
    run.flush()
    assert run.journal is not None
    small_disk_repo.fill()
    for i in range(20_000):  # more than the last free block holds
        xp.log_metric("loss", float(i), step=i)
    wait_for(
        lambda: "cannot write its journal" in capfd.readouterr().err,
        "the flusher to report the full disk",
    )
    small_disk_repo.free()
    time.sleep(0.01)
    run.flush()  # the retry writes what the failed flush could not, once
    run.journal.close(remove=False)  # and then the process dies
    fluent._stack.clear()
    _code, out, err = xp_main("recover", cwd=small_disk_repo.root)
    assert f"recovered {run.id}" in out, err
    steps = list(xp.get_run(run.id).series("loss")["step"])
    assert steps == list(range(20_000))


def test_log_calls_that_flush_never_fail_on_a_full_disk(
    small_disk_repo: SmallDisk, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A log call flushes when the flusher thread falls behind (issue 18); on a full disk
    that flush fails, is said once, and the points wait in memory, as the thread's do."""
    from xp.tracking import run as run_module

    monkeypatch.setattr(run_module, "_MAX_HELD", 1_000)
    run = xp.start_run(name="full-helper")
    run.flush()
    small_disk_repo.fill()
    for i in range(30_000):
        xp.log_metric("loss", float(i), step=i)
    assert "cannot write its journal" in capfd.readouterr().err
    small_disk_repo.free()
    xp.end_run()
    assert list(xp.get_run(run.id).series("loss")["step"]) == list(range(30_000))
