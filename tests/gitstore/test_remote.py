"""gitstore.remote: pushes of many refs through a staged glob, leased and atomic alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import git
from xp.errors import GitError
from xp.gitstore import remote
from xp.gitstore.repo import find_repo


@pytest.fixture
def pair(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``repo`` with three commits and a bare remote ``origin``; globs from one ref."""
    monkeypatch.setattr(remote, "GLOB_FROM", 1)
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    for n in range(3):
        (repo / "f.txt").write_text(f"{n}\n")
        git(repo, "add", "f.txt")
        git(repo, "commit", "-qm", f"c{n}")
    return repo, bare


def _commits(repo: Path) -> list[str]:
    return git(repo, "rev-list", "HEAD").split()[:3]


def _remote_refs(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/xp/")
    return dict(line.split() for line in out.splitlines())


def test_tips_go_through_one_glob_leased_atomically_and_leave_nothing_staged(
    pair: tuple[Path, Path],
) -> None:
    repo, bare = pair
    a, b, c = _commits(repo)
    git(repo, "push", "-q", "origin", f"{c}:refs/xp/catalog/aa")
    tips = {"refs/xp/catalog/aa": a, "refs/xp/catalog/bb": b}
    # a lease that no longer holds (aa is at c, not b): the whole push is refused, bb too
    rows = remote.push(
        find_repo(repo),
        "origin",
        [],
        leases={"refs/xp/catalog/aa": b, "refs/xp/catalog/bb": None},
        tips=tips,
    )
    assert any(r.rejected and r.ref == "refs/xp/catalog/aa" for r in rows)
    assert _remote_refs(bare) == {"refs/xp/catalog/aa": c}
    assert git(repo, "for-each-ref", "refs/xp/pushing/") == ""
    rows = remote.push(
        find_repo(repo),
        "origin",
        [],
        leases={"refs/xp/catalog/aa": c, "refs/xp/catalog/bb": None},
        tips=tips,
    )
    assert not any(r.rejected for r in rows)
    assert {r.ref for r in rows} == set(tips)  # the remote's names, not the staged ones
    assert _remote_refs(bare) == tips
    assert git(repo, "for-each-ref", "refs/xp/pushing/") == ""
    assert not (repo / ".git" / "refs" / "xp" / "pushing").exists()


def test_a_pruning_push_sends_its_tips_one_by_one_and_keeps_the_other_refs(
    pair: tuple[Path, Path],
) -> None:
    """``--prune`` deletes every remote ref a glob refspec covers without a local source: a
    staged glob there would delete the remote's other buckets."""
    repo, bare = pair
    _a, b, c = _commits(repo)
    git(repo, "push", "-q", "origin", f"{c}:refs/xp/catalog/aa", f"{c}:refs/xp/runs/old")
    rows = remote.push(
        find_repo(repo),
        "origin",
        ["refs/xp/migrating-from-nothing/*:refs/xp/runs/*"],
        leases={"refs/xp/catalog/bb": None},
        prune=True,
        tips={"refs/xp/catalog/bb": b},
    )
    assert not any(r.rejected for r in rows)
    assert _remote_refs(bare) == {"refs/xp/catalog/aa": c, "refs/xp/catalog/bb": b}


def test_only_the_staged_refs_of_dead_pushes_on_this_host_are_cleared(
    pair: tuple[Path, Path],
) -> None:
    repo, _bare = pair
    a = _commits(repo)[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = remote._host()
    names = {
        "dead": f"refs/xp/pushing/{host}-{dead.pid}-00000000/0/aa",
        "live": f"refs/xp/pushing/{host}-{os.getpid()}-00000000/0/aa",
        "elsewhere": f"refs/xp/pushing/other.host-{dead.pid}-00000000/0/aa",
        # no such process here, but written within the hour: a container sharing the host's
        # name (its own process ids) may be pushing it right now
        "recent": f"refs/xp/pushing/{host}-{dead.pid}-11111111/0/aa",
    }
    for name in names.values():
        git(repo, "update-ref", name, a)
    hour_ago = time.time() - 3700
    for key in ("dead", "live", "elsewhere"):
        token = names[key].split("/")[3]
        os.utime(repo / ".git" / "refs" / "xp" / "pushing" / token, (hour_ago, hour_ago))
    remote.clear_staging(find_repo(repo))
    left = set(git(repo, "for-each-ref", "--format=%(refname)", "refs/xp/pushing/").split())
    assert left == {names["live"], names["elsewhere"], names["recent"]}


def test_a_tip_whose_staged_ref_vanished_fails_the_push_instead_of_passing_as_sent(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """git pushes nothing for a glob that matches nothing, and says nothing of it: the push
    must not report those tips as sent (the caller would move its tracking refs)."""
    import contextlib

    repo, bare = pair
    a, b, _c = _commits(repo)

    @contextlib.contextmanager
    def emptied(_repo: object, _tips: object) -> object:
        yield ["refs/xp/pushing/gone/0/*:refs/xp/catalog/*"], []

    monkeypatch.setattr(remote, "_staged", emptied)
    tips = {"refs/xp/catalog/aa": a, "refs/xp/catalog/bb": b}
    with pytest.raises(GitError, match="not sent"):
        remote.push(find_repo(repo), "origin", [], leases=dict.fromkeys(tips), tips=tips)
    assert _remote_refs(bare) == {}


def test_git_runs_with_a_roomier_malloc_unless_the_user_tuned_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xp.gitstore.repo import git_env

    assert git_env()["GLIBC_TUNABLES"].startswith("glibc.malloc.trim_threshold=")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert git_env()["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
