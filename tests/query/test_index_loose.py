"""Records read from loose objects in Python and from packs by git index the same rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import git
from tests.query.test_index import all_views, make_run
from xp.errors import GitError
from xp.gitstore.repo import find_repo
from xp.query.index import INDEX_FILE, rows


def wanted(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/xp/runs/")
    return {line.split()[0]: line.rsplit("/", 1)[1] for line in out.splitlines()}


def both_ways(repo: Path) -> tuple[list[rows.Stored], list[rows.Stored]]:
    """iter_rows (loose objects read here where it can) and the cat-file-only path, each
    in commit order."""
    runs = wanted(repo)
    read = list(rows.iter_rows(find_repo(), runs))
    through_git = list(rows._git_rows(find_repo(), runs, {}))
    return sorted(read, key=by_commit), sorted(through_git, key=by_commit)


def by_commit(item: rows.Stored) -> str:
    return item.commit


def test_loose_packed_and_mixed_objects_show_the_same(repo: Path) -> None:
    for i in range(4):
        make_run(f"r{i}", acc=i / 10)
    read, through_git = both_ways(repo)
    assert read == through_git
    loose = all_views()
    git(repo, "repack", "-adq")
    git(repo, "prune-packed")
    (repo / ".git" / "xp" / INDEX_FILE).unlink()
    assert all_views() == loose  # cold, every object packed
    make_run("late", acc=0.9)  # loose beside packed ones
    read, through_git = both_ways(repo)
    assert read == through_git
    assert len(read) == 5
    everything = all_views()
    (repo / ".git" / "xp" / INDEX_FILE).unlink()
    assert all_views() == everything


def record_blob(repo: Path, run_id: str, name: str) -> Path:
    sha = git(repo, "rev-parse", f"refs/xp/runs/{run_id}:.xp/run/{name}").strip()
    return repo / ".git" / "objects" / sha[:2] / sha[2:]


@pytest.mark.parametrize("damage", ["truncated", "renamed"])
def test_a_damaged_loose_record_is_left_to_git(repo: Path, damage: str) -> None:
    """A loose file that does not read back exactly is not used: git reads it (and says
    what is wrong, as it did before); the other runs are unaffected."""
    good = make_run("good")
    bad = make_run("bad", acc=0.7)
    path = record_blob(repo, bad, "metrics.yaml")
    original = path.read_bytes()
    try:
        path.chmod(0o644)
        if damage == "truncated":
            path.write_bytes(original[:-4])
            with pytest.raises(GitError, match="git fsck"):
                list(rows.iter_rows(find_repo(), wanted(repo)))
        else:  # another object's bytes under this name: git does not check, xp does
            other = record_blob(repo, good, "params.yaml").read_bytes()
            path.write_bytes(other)
            read, through_git = both_ways(repo)
            assert read == through_git  # what git answers, as before
    finally:
        path.write_bytes(original)
        path.chmod(0o444)


def test_a_packed_repository_costs_few_failed_opens(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``_GIVE_UP`` runs in a row with no loose commit, nothing more is tried."""
    for i in range(3):
        make_run(f"p{i}")
    git(repo, "repack", "-adq")
    git(repo, "prune-packed")
    asked: list[str] = []
    real = rows.LooseObjects.read

    def counting(self: rows.LooseObjects, sha: str) -> tuple[bytes, bytes] | None:
        asked.append(sha)
        return real(self, sha)

    monkeypatch.setattr(rows.LooseObjects, "read", counting)
    monkeypatch.setattr(rows, "_GIVE_UP", 2)
    got = list(rows.iter_rows(find_repo(), wanted(repo)))
    assert len(got) == 3
    assert all(item.error is None for item in got)
    assert len(asked) == 2
