"""Many writers into one repo: every run lands, git stays consistent."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

import xp
from tests.helpers import git, spawned

WRITER = """
import sys, xp
n = int(sys.argv[1])
for i in range(n):
    with xp.start_run(name=f"w{sys.argv[2]}-{i}", params={"i": i, "w": sys.argv[2]}):
        xp.log_metric("m", i)
"""


@pytest.mark.slow
def test_8_processes_x_50_runs(repo: Path) -> None:
    (repo / "writer.py").write_text(WRITER)
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                spawned(
                    [sys.executable, "writer.py", "50", str(w)], cwd=repo, stderr=PIPE, text=True
                )
            )
            for w in range(8)
        ]
        pack = stack.enter_context(spawned(["git", "pack-refs", "--all"], cwd=repo))
        errors = [p.communicate()[1] for p in procs]
        pack.wait()
    assert all(p.returncode == 0 for p in procs), errors
    runs = xp.list_runs()
    assert len(runs) == 400
    names = {xp.get_run(r.id).name for r in runs[::37]}
    assert all(n.startswith("w") for n in names)
    assert git(repo, "for-each-ref", "--count=1000", "refs/xp/runs").count("\n") == 400


def test_two_runs_finishing_at_the_same_moment(repo: Path) -> None:
    script = (
        "import sys, time, xp\n"
        "r = xp.start_run(name=sys.argv[1])\n"
        "xp.log_metric('m', 1)\n"
        "t = float(sys.argv[2])\n"
        "time.sleep(max(0, t - time.time()))\n"
        "xp.end_run()\n"
        "print(r.id)\n"
    )
    (repo / "finish.py").write_text(script)
    import time

    at = str(time.time() + 1.0)
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                spawned(
                    [sys.executable, "finish.py", f"p{i}", at],
                    cwd=repo,
                    stdout=PIPE,
                    stderr=PIPE,
                    text=True,
                )
            )
            for i in range(2)
        ]
        outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ids = {o[0].strip() for o in outs}
    assert len(ids) == 2
    assert {r.id for r in xp.list_runs()} == ids


def test_runs_in_one_process_from_threads(repo: Path) -> None:
    import threading

    run = xp.start_run()

    def work(k: int) -> None:
        for i in range(2000):
            run.log_metric(f"t{k}", float(i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    xp.end_run()
    got = xp.get_run(run.id)
    assert all(len(got.series(f"t{k}")) == 2000 for k in range(4))


@pytest.mark.parametrize("when", ["before-announce", "after-announce"])
def test_a_file_being_logged_when_another_thread_ends_the_run_is_refused_not_lost(
    repo: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """``end_run`` from another thread while ``log_bytes`` hashes: the call fails with
    RunEndedError (not a journal error naming the disk), and what it returned before is
    in the commit. Before: EBADF on the closed journal, or an entry silently left out."""
    from xp.artifacts import cache
    from xp.errors import RunEndedError

    real = cache.add_bytes
    run = xp.start_run(name="race")
    run.log_bytes(b"kept", "kept.txt")

    def racing(where: Path, data: bytes, announce: object) -> str:
        if when == "before-announce":
            run.finish()
            return real(where, data, announce)  # type: ignore[arg-type]
        sha = real(where, data, announce)  # type: ignore[arg-type]
        run.finish()
        return sha

    monkeypatch.setattr(cache, "add_bytes", racing)
    with pytest.raises(RunEndedError, match="ended while a file was being logged"):
        run.log_bytes(b"late", "late.txt")
    monkeypatch.setattr(cache, "add_bytes", real)
    assert [a.path for a in xp.get_run(run.id).artifacts] == ["kept.txt"]
