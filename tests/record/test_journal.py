"""The journal: every header change is journaled (a run recovered later keeps its exit code
and warnings), and a journal that cannot be written is reported at once, not swallowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import wait_for


def test_recovered_run_keeps_exit_code_and_warnings(repo: Path) -> None:
    (repo / "params.yaml").write_text("lr: [1,\n")  # unreadable: `xp run` warns about it
    refs = repo / ".git" / "refs" / "xp"
    refs.mkdir(parents=True)
    (refs / "runs").write_text("in the way\n")  # the run's ref cannot be created
    proc = subprocess.run(
        [sys.executable, "-m", "xp", "run", "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert xp.list_runs(repo) == []
    (refs / "runs").unlink()
    recovered = subprocess.run(
        [sys.executable, "-m", "xp", "recover"], cwd=repo, capture_output=True, text=True
    )
    assert recovered.returncode == 0, recovered.stderr
    (entry,) = xp.list_runs(repo)
    run = xp.get_run(entry.id, path=repo)
    assert run.status == "failed"
    assert run.meta["exit_code"] == 3
    assert any("params.yaml" in w and "invalid YAML" in w for w in run.meta["warnings"])


def test_journal_write_failure_is_reported_and_the_run_still_ends(
    repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (repo / ".git" / "xp").mkdir()
    (repo / ".git" / "xp" / "journal").write_text("a file where the journal folder goes\n")
    with xp.start_run(name="no-journal") as run:
        xp.log_metric("loss", 0.5)
        wait_for(
            lambda: "cannot write its journal" in capfd.readouterr().err,
            "the journal's write error on stderr",
        )
    assert xp.get_run(run.id).metrics == {"loss": 0.5}


def test_media_lines_replay_and_a_damaged_one_loses_only_itself() -> None:
    import json

    from xp.record.header import RunHeader
    from xp.record.journal import line, replay

    header = line("H", RunHeader(id="1m8g9wys2dzmgq", name="n", start_time=1.0).to_json())
    good = {"key": "img", "kind": "image", "path": "media/img/0.png", "step": 0, "timestamp": 9}
    data = header + line("G", good) + "G\t" + json.dumps({"key": 3}) + "\n" + "M\tx\t1\t0\t1.0\n"
    state = replay(data.encode())
    assert list(state.media) == ["media/img/0.png"]
    assert state.media["media/img/0.png"].step == 0
    assert state.points == [("x", 1, 0, 1.0)]
