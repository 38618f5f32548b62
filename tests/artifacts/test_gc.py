"""xp gc: free cache objects no run references (after xp rm, across clones and branches)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import xp
from tests.helpers import Team, git, log_run, xp_main
from xp.artifacts import cache
from xp.gitstore.refs import delete_ref


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


# -- gc while runs log and commit (issue 10) -----------------------------------------------------
@pytest.mark.parametrize(
    ("writers", "runs"), [(3, 4), pytest.param(4, 15, marks=pytest.mark.slow)], ids=["3x4", "4x15"]
)
def test_runs_lose_nothing_to_xp_gc_and_git_gc_running_meanwhile(
    repo: Path, writers: int, runs: int
) -> None:
    """Writers' runs each log a new and a shared artifact (some living past their first
    flush) while `xp gc` with no grace and `git gc --prune=now` loop: every run recorded,
    every artifact still cached, git fsck clean, no kept pack left behind. The scripts are
    benchmarks/gc_concurrency.py's, which runs 16 x 100 with `git gc --auto`."""
    from benchmarks.gc_concurrency import check, stress

    out = stress(repo, writers, runs, "--prune=now")
    assert out["writer_errors"] == []
    code, rounds, err = out["xp_gc"]  # type: ignore[misc]
    assert code == 0, err
    assert int(rounds) >= 3
    ids = out["ids"]
    assert isinstance(ids, list)
    assert len(ids) == writers * runs
    assert check(repo, ids) == (0, [])
    code, text, err = xp_main("gc", "--grace", "0", cwd=repo)  # gc still works afterwards
    assert code == 0, err
    assert "0 objects deleted" in text
