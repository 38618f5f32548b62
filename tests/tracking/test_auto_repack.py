"""A repository xp writes many runs to keeps its objects packed: once about
``REPACK_AT`` objects are loose, the run commit that counted them starts ``git repack``
in the background (as ``git gc --auto`` does), which drops nothing."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import xp
from tests.helpers import git
from xp.gitstore.repack import REPACK_AT, loose_estimate, wait_for_repack
from xp.gitstore.repo import find_repo


def _blobs_in_17(count: int, salt: str) -> list[bytes]:
    """Contents of ``count`` blobs whose ids start with 17 (the folder git's estimate reads)."""
    out: list[bytes] = []
    i = 0
    while len(out) < count:
        data = f"{salt} {i}\n".encode()
        if hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest().startswith("17"):
            out.append(data)
        i += 1
    return out


def _write_blobs(repo: Path, blobs: list[bytes]) -> list[str]:
    shas = []
    for data in blobs:
        proc = subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True
        )
        shas.append(proc.stdout.decode().strip())
    return shas


def _many_loose(repo: Path) -> tuple[list[str], str]:
    """Loose objects past the threshold, reachable from a branch; plus one no ref reaches."""
    reachable = _write_blobs(repo, _blobs_in_17(REPACK_AT // 256, "kept"))
    tree_text = "".join(f"100644 blob {sha}\tf{i}\n" for i, sha in enumerate(reachable))
    tree = subprocess.run(
        ["git", "mktree"], cwd=repo, input=tree_text, capture_output=True, text=True
    ).stdout.strip()
    commit = git(repo, "commit-tree", tree, "-m", "many").strip()
    git(repo, "update-ref", "refs/heads/many", commit)
    (unreachable,) = _write_blobs(repo, _blobs_in_17(1, "dangling"))
    return reachable, unreachable


def _run() -> str:
    with xp.start_run() as run:
        xp.log_metric("loss", 0.5)
    return run.id


def test_a_run_commit_past_the_threshold_packs_loose_objects_and_drops_nothing(
    repo: Path,
) -> None:
    git(repo, "config", "gc.auto", "6700")  # git's default, set: the user's own config
    reachable, unreachable = _many_loose(repo)
    # a pack kept by a live run (or a fetch in progress) is never touched
    kept = git(repo, "rev-parse", "HEAD^{tree}").strip()
    name = subprocess.run(
        ["git", "pack-objects", "-q", ".git/objects/pack/pack"],
        cwd=repo,
        input=kept + "\n",
        capture_output=True,
        text=True,
    ).stdout.strip()
    keep = repo / ".git" / "objects" / "pack" / f"pack-{name}.keep"
    keep.write_text("xp: live run test\n")
    handle = find_repo(repo)
    assert loose_estimate(handle.objects_dir) >= REPACK_AT

    run_id = _run()
    wait_for_repack(handle.xp_dir)

    assert loose_estimate(handle.objects_dir) < REPACK_AT
    for sha in [*reachable, unreachable]:  # packed (or still loose), never dropped
        git(repo, "cat-file", "-e", sha)
    assert keep.exists()
    assert keep.with_suffix(".pack").exists()
    assert [r.id for r in xp.list_runs()] == [run_id]


def test_gc_auto_0_turns_it_off(repo: Path) -> None:
    git(repo, "config", "gc.auto", "0")
    _many_loose(repo)
    handle = find_repo(repo)
    _run()
    wait_for_repack(handle.xp_dir)
    assert loose_estimate(handle.objects_dir) >= REPACK_AT
    assert not list((repo / ".git" / "objects" / "pack").glob("*.pack"))
