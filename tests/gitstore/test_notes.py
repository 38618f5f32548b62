"""gitstore.notes: the notes tip's type is read from its loose object without a git process
(every `xp tag` asks), and from git when the object is packed or not an object name."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import git
from xp.gitstore import notes
from xp.gitstore.repo import find_repo


def test_is_commit_agrees_with_git_loose_and_packed(repo: Path) -> None:
    r = find_repo(repo)
    commit = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    blob = git(repo, "hash-object", "-w", "--stdin", input_text="not a commit").strip()
    assert (repo / ".git" / "objects" / blob[:2] / blob[2:]).is_file()  # loose
    assert [notes.is_commit(r, s) for s in (commit, tree, blob)] == [True, False, False]
    git(repo, "update-ref", "refs/keep/blob", blob)  # so gc packs it rather than prunes it
    git(repo, "gc", "-q")
    assert not (repo / ".git" / "objects" / blob[:2] / blob[2:]).exists()  # packed now
    assert [notes.is_commit(r, s) for s in (commit, tree, blob)] == [True, False, False]
    assert not notes.is_commit(r, "0" * 40)
    assert not notes.is_commit(r, "../../HEAD")
