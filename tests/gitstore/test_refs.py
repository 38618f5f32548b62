"""Ref updates are compare-and-swap, loose or packed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import git, log_run
from xp.gitstore.refs import RefChangedError, delete_ref, read_ref


def test_delete_ref_is_compare_and_swap(repo: Path) -> None:
    r1 = log_run(repo, {"1.bin": b"1"})
    common = repo / ".git"
    name = f"refs/xp/runs/{r1}"
    sha = read_ref(common, name)
    assert sha is not None
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(RefChangedError):
        delete_ref(common, name, head)
    assert read_ref(common, name) == sha
    git(repo, "pack-refs", "--all")
    with pytest.raises(RefChangedError):
        delete_ref(common, name, head)
    delete_ref(common, name, sha)
    assert read_ref(common, name) is None
    assert git(repo, "rev-parse", "--verify", "-q", "refs/heads/main").strip() == head
    assert not list(common.glob("**/*.lock"))
