"""Transfers report progress by bytes: one large artifact moves the bar before it is done, in
`xp push` and in the pre-push hook of a plain `git push`."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import xp
from tests.helpers import Team, git
from xp.gitstore.repo import find_repo
from xp.sharing.push_pull import push


def _big_run(root: Path, size: int) -> str:
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "model.bin").write_bytes(os.urandom(size))
    with xp.start_run(path=root) as run:
        xp.log_artifact(root / "out" / "model.bin")
    return str(run.id)


def test_one_large_object_reports_bytes_before_its_end(team: Team) -> None:
    size = 13 << 20  # several copy chunks, over the one-request size
    _big_run(team.a, size)
    seen: list[tuple[int, int]] = []
    result = push(find_repo(team.a), progress=lambda done, total: seen.append((done, total)))
    assert result.upload.objects == 1
    assert seen[-1] == (size, size)
    assert any(0 < done < size for done, _total in seen), seen  # not only 0 % then 100 %


def test_the_pre_push_hook_shows_a_progress_bar_on_a_terminal(team: Team) -> None:
    _big_run(team.a, 9 << 20)
    git(team.a, "commit", "-q", "--allow-empty", "-m", "more")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            ["git", "push", "origin", "main"],
            cwd=team.a,
            stderr=follower,
            stdout=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's far end is closed: all read
                break
            if not chunk:
                break
            out += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "uploading artifacts [" in text
    assert "100.0%" in text
    assert "sent 1 run to origin" in text
