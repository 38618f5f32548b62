"""gitstore.chains.write builds its commit's blobs, trees and commit itself (no dulwich on the
`xp tag` path): the objects must be the ones git builds from the same content."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import git
from xp.gitstore import chains
from xp.gitstore.objects import zone
from xp.gitstore.repo import find_repo


def test_write_gives_the_objects_git_gives(repo: Path, tmp_path: Path) -> None:
    r = find_repo(repo)
    files = {"a.txt": b"1\n", "a/b": b"2\n", "a-b/c": b"3\n", "a0": b"", "z/y/x": b"4\n"}
    first = chains.write(
        r, "refs/xp-test/chain", parent=None, expected=None, files=files, message="one\n\nbody\n"
    )
    second = chains.write(
        r,
        "refs/xp-test/chain",
        parent=first.commit,
        expected=first.commit,
        files={"a/b": b"changed\n", "a/new": b"5\n"},
        message="two\n",
    )
    # the same content committed by git itself, in a scratch repository
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "other")
    for path, data in {**files, "a/b": b"changed\n", "a/new": b"5\n"}.items():
        (other / path).parent.mkdir(parents=True, exist_ok=True)
        (other / path).write_bytes(data)
    git(other, "add", "-A")
    assert second.tree == git(other, "write-tree").strip()
    assert git(repo, "rev-parse", f"{second.commit}^").strip() == first.commit
    assert git(repo, "rev-parse", "refs/xp-test/chain").strip() == second.commit
    ident = git(repo, "var", "GIT_COMMITTER_IDENT").strip().rsplit(" ", 2)[0]
    shown = git(repo, "cat-file", "-p", first.commit)
    assert f"author {ident} " in shown
    assert f"committer {ident} " in shown
    assert shown.endswith("\n\none\n\nbody\n")
    third = chains.write(
        r,
        "refs/xp-test/chain",
        parent=second.commit,
        expected=second.commit,
        files={"t": b"z"},
        message="tz\n",
        now=1_800_000_000.0,
    )
    assert git(repo, "log", "-1", "--format=%s %at %ct", third.commit).split() == [
        "tz",
        "1800000000",
        "1800000000",
    ]


def test_zone_is_written_as_git_writes_it() -> None:
    assert zone(0) == b"+0000"
    assert zone(19800) == b"+0530"
    assert zone(-19800) == b"-0530"
    assert zone(-3600 * 10) == b"-1000"
