"""xp rm and xp gc: delete runs (CAS, packed refs, remote), free unreferenced cache objects."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, log_run, one_line_error, xp_main
from xp.artifacts import cache
from xp.gitstore.refs import RefChangedError, delete_ref, read_ref


def age_cache(cache_dir: Path, seconds: float = 7200) -> None:
    """Make every object look unused for ``seconds`` (gc spares recently touched ones)."""
    old = time.time() - seconds
    for _sha, path in cache.iter_objects(cache_dir):
        os.utime(path, (old, old))


def objects(cache_dir: Path) -> set[str]:
    return {sha for sha, _ in cache.iter_objects(cache_dir)}


def test_rm_then_gc_frees_bytes(repo: Path) -> None:
    keep = log_run(repo, {"keep.bin": b"k" * 1000})
    drop = log_run(repo, {"drop.bin": b"d" * 5000, "shared.bin": b"k" * 1000})
    cache_dir = repo / ".git" / "xp" / "cache"
    drop_sha = xp.get_run(drop).artifacts[0].sha256
    code, out, err = xp_main("rm", drop, cwd=repo)
    assert code == 0, err
    assert f"removed {drop}" in out
    assert f"refs/xp/runs/{drop}" not in git(repo, "for-each-ref")
    assert not (repo / ".git" / "refs" / "xp" / "runs" / drop).exists()
    code, out, _err = xp_main("gc", cwd=repo)
    assert "freed 0 B: 0 objects" in out  # everything was touched in the last hour
    age_cache(cache_dir)
    code, out, err = xp_main("gc", "--dry-run", cwd=repo)
    assert code == 0, err
    assert "would free 5.0 kB: 1 objects" in out
    assert drop_sha in objects(cache_dir)
    code, out, err = xp_main("gc", cwd=repo)
    assert "freed 5.0 kB: 1 objects deleted, 1 kept" in out
    assert objects(cache_dir) == {xp.get_run(keep).artifacts[0].sha256}


def test_gc_keeps_branches_fetched_runs_and_live_runs(team: Team) -> None:
    cache_dir = team.b / ".git" / "xp" / "cache"
    fetched = log_run(team.a, {"f.bin": b"fetched"})
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("pull", "--artifacts", cwd=team.b)[0] == 0
    # A record committed on a branch (as `xp commit` users may do) refers to its artifact.
    branch_run = log_run(team.b, {"b.bin": b"on a branch"})
    git(team.b, "checkout", "-q", "-b", "exp", f"refs/xp/runs/{branch_run}")
    git(team.b, "checkout", "-q", "main")
    delete_ref(
        team.b / ".git",
        f"refs/xp/runs/{branch_run}",
        git(team.b, "rev-parse", f"refs/xp/runs/{branch_run}").strip(),
    )
    os.chdir(team.b)
    live = xp.start_run()
    (team.b / "out" / "live.bin").write_bytes(b"live run artifact")
    xp.log_artifact(team.b / "out" / "live.bin")
    live.flush()
    try:
        age_cache(cache_dir)
        before = objects(cache_dir)
        code, out, err = xp_main("gc", cwd=team.b)
        assert code == 0, err
        assert "0 objects deleted" in out
        assert objects(cache_dir) == before
        assert len(before) == 3
    finally:
        xp.end_run()
    assert xp.get_run(fetched, team.b).artifacts


def test_shared_cache_gc_counts_every_clone(team: Team, tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    git(team.a, "config", "xp.cacheDir", str(shared))
    git(team.b, "config", "xp.cacheDir", str(shared))
    a_run = log_run(team.a, {"a.bin": b"from a"})
    b_run = log_run(team.b, {"b.bin": b"from b"})
    assert not (team.a / ".git" / "xp" / "cache" / "sha256").exists()
    assert len(objects(shared)) == 2
    age_cache(shared)
    code, out, err = xp_main("gc", cwd=team.a)
    assert code == 0, err
    assert "0 objects deleted" in out
    assert xp_main("rm", b_run, cwd=team.b)[0] == 0
    code, out, err = xp_main("gc", cwd=team.a)
    assert "1 objects deleted" in out
    assert objects(shared) == {xp.get_run(a_run, team.a).artifacts[0].sha256}


def test_rm_handles_packed_refs_and_fetched_copies(team: Team) -> None:
    r1 = log_run(team.a, {"1.bin": b"1"})
    r2 = log_run(team.a, {"2.bin": b"2"})
    assert xp_main("push", cwd=team.a)[0] == 0
    assert xp_main("pull", cwd=team.a)[0] == 0  # a now also has tracking copies
    git(team.a, "pack-refs", "--all")
    assert not (team.a / ".git" / "refs" / "xp" / "runs" / r1).exists()
    code, _out, err = xp_main("rm", r1, cwd=team.a)
    assert code == 0, err
    refs = git(team.a, "for-each-ref", "--format=%(refname)", "refs/xp/").split()
    assert refs == [f"refs/xp/remotes/origin/runs/{r2}", f"refs/xp/runs/{r2}"]
    assert f"refs/xp/runs/{r1}" in git(team.bare, "for-each-ref")  # remote untouched


def test_rm_on_the_git_remote(team: Team) -> None:
    r1 = log_run(team.a, {"1.bin": b"1"})
    r2 = log_run(team.a, {"2.bin": b"2"})
    assert xp_main("push", "origin", r1, cwd=team.a)[0] == 0
    code, out, err = xp_main("rm", r1, r2, "--remote", "origin", cwd=team.a)
    assert code == 0, err
    assert "1 deleted on 'origin', 1 were not there" in out
    assert "refs/xp/" not in git(team.bare, "for-each-ref")
    assert "refs/xp/" not in git(team.a, "for-each-ref")


def test_rm_bad_input_removes_nothing(repo: Path) -> None:
    r1 = log_run(repo, {"1.bin": b"1"})
    msg = one_line_error(*xp_main("rm", r1, "nosuchrun", cwd=repo)[::2])
    assert "nosuchrun" in msg
    msg = one_line_error(*xp_main("rm", "HEAD", cwd=repo)[::2])
    assert "not a run" in msg
    assert f"refs/xp/runs/{r1}" in git(repo, "for-each-ref")


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
