"""The workspace snapshot must equal what `git add -A && git commit` would record."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import xp
from tests.helpers import git
from xp.gitstore.repo import find_repo
from xp.gitstore.snapshot import snapshot


def _git_tree_of_workspace(repo: Path) -> str:
    """What git itself records for `git add -A` (on a throwaway copy of the index, with the
    index's mtime: a copy dated now would make git trust the stat data of a file rewritten,
    same size, in the second of the last `git add`, and record its old content)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "test-index")}
    if (repo / ".git" / "index").exists():
        shutil.copy2(repo / ".git" / "index", repo / ".git" / "test-index")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, capture_output=True)
    tree = subprocess.run(
        ["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    (repo / ".git" / "test-index").unlink()
    return tree


def test_modes_symlinks_untracked_and_ignored(repo: Path) -> None:
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("train.py")
    (repo / ".gitignore").write_text("outputs/\n*.log\n")
    (repo / "outputs").mkdir()
    (repo / "outputs" / "model.bin").write_bytes(b"m")
    (repo / "x.log").write_text("log")
    (repo / "sub").mkdir()
    (repo / "sub" / "new.py").write_text("n\n")
    (repo / "params.yaml").unlink()
    snap = snapshot(find_repo(), 10_000_000)
    assert snap.tree == _git_tree_of_workspace(repo)
    listing = git(repo, "ls-tree", "-r", snap.tree)
    assert "100755 blob" in next(line for line in listing.splitlines() if "run.sh" in line)
    assert "120000 blob" in next(line for line in listing.splitlines() if "link" in line)
    names = git(repo, "ls-tree", "-r", "--name-only", snap.tree).split()
    assert "sub/new.py" in names
    assert "params.yaml" not in names
    assert not any(n.startswith("outputs") or n.endswith(".log") for n in names)


def test_autocrlf_matches_git(repo: Path) -> None:
    git(repo, "config", "core.autocrlf", "true")
    (repo / "win.txt").write_bytes(b"a\r\nb\r\n")
    snap = snapshot(find_repo(), 10_000_000)
    assert snap.tree == _git_tree_of_workspace(repo)
    blob = git(repo, "rev-parse", f"{snap.tree}:win.txt").strip()
    assert git(repo, "cat-file", "-p", blob) == "a\nb\n"


def test_large_files_are_left_out_with_a_warning(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "big.bin").write_bytes(b"x" * 2000)
    (repo / "small.bin").write_bytes(b"x" * 10)
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("max_file_size: 1KB\n")
    with xp.start_run() as run:
        pass
    said = capsys.readouterr().err  # said when the run starts, not only inside meta.yaml
    assert "xp: warning: big.bin is 2.0 kB, over max_file_size (1.0 kB" in said
    assert "log_artifact('big.bin')" in said
    names = git(repo, "ls-tree", "-r", "--name-only", f"refs/xp/runs/{run.id}").split()
    assert "small.bin" in names
    assert "big.bin" not in names
    warnings = xp.get_run(run.id).meta["warnings"]
    assert len(warnings) == 1
    assert "big.bin" in warnings[0]
    assert "log_artifact" in warnings[0]
    objects = git(repo, "count-objects", "-v")
    assert objects  # the large blob was never hashed into git:
    big_sha = git(repo, "hash-object", "big.bin").strip()
    proc = subprocess.run(["git", "cat-file", "-e", big_sha], cwd=repo)
    assert proc.returncode != 0


def test_submodule_commit_is_recorded(repo: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "f").write_text("1\n")
    git(lib, "add", ".")
    git(lib, "commit", "-qm", "one")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(repo, "commit", "-qm", "add submodule")
    (repo / "lib" / "f").write_text("2\n")
    git(repo / "lib", "commit", "-qam", "two")
    new_head = git(repo / "lib", "rev-parse", "HEAD").strip()
    with xp.start_run() as run:
        pass
    entry = git(repo, "ls-tree", f"refs/xp/runs/{run.id}", "lib").split()
    assert entry[:3] == ["160000", "commit", new_head]


def test_snapshot_reuse_notices_changes(repo: Path) -> None:
    r = find_repo()
    first = snapshot(r, 10_000_000, reuse=True)
    # Files written just now are "racy": the memo is not trusted, so this re-snapshots.
    (repo / "train.py").write_text("print('changed')\n")
    second = snapshot(r, 10_000_000, reuse=True)
    assert second.tree != first.tree
    (repo / "new_dir").mkdir()
    (repo / "new_dir" / "f.py").write_text("f\n")
    third = snapshot(r, 10_000_000, reuse=True)
    assert third.tree == _git_tree_of_workspace(repo) != second.tree


def test_snapshot_reuse_with_old_files(repo: Path) -> None:
    old = 1_600_000_000
    for p in repo.rglob("*"):
        if ".git" not in p.parts:
            os.utime(p, (old, old))
    os.utime(repo, (old, old))
    r = find_repo()
    first = snapshot(r, 10_000_000, reuse=True)
    assert snapshot(r, 10_000_000, reuse=True) is first  # nothing changed: memo reused
    (repo / "train.py").write_text("print('changed again')\n")
    assert snapshot(r, 10_000_000, reuse=True).tree != first.tree


@pytest.mark.parametrize("config", [["core.filemode", "false"], ["core.symlinks", "false"]])
def test_odd_core_settings_match_git(repo: Path, config: list[str]) -> None:
    git(repo, "config", *config)
    (repo / "train.py").chmod(0o755)
    assert snapshot(find_repo(), 10_000_000).tree == _git_tree_of_workspace(repo)


def test_stale_index_stat_data_is_refreshed_in_xps_copy_only(repo: Path) -> None:
    for p in repo.glob("*.py"):
        os.utime(p)  # same content, new stat data: git would re-hash these every time
    index_before = (repo / ".git" / "index").read_bytes()
    first = snapshot(find_repo(), 10_000_000)
    caches = list((repo / ".git" / "xp").glob("snapshot-index.*"))
    assert len(caches) == 1
    assert snapshot(find_repo(), 10_000_000).tree == first.tree == _git_tree_of_workspace(repo)
    assert (repo / ".git" / "index").read_bytes() == index_before  # the user's index untouched
    (repo / "params.yaml").write_text("lr: 0.2\n")
    git(repo, "add", "params.yaml")  # the user's index changes: a new cache replaces the old
    (repo / "params.yaml").write_text("lr: 0.3\n")  # same size, often the same second
    tree = snapshot(find_repo(), 10_000_000).tree
    assert git(repo, "cat-file", "-p", f"{tree}:params.yaml") == "lr: 0.3\n"
    assert tree == _git_tree_of_workspace(repo)
    assert list((repo / ".git" / "xp").glob("snapshot-index.*")) != caches
    assert len(list((repo / ".git" / "xp").glob("snapshot-index.*"))) == 1


def test_a_scan_started_early_gives_the_same_tree_and_leaves_nothing(repo: Path) -> None:
    """``start_scan`` (``xp commit`` starts it before its imports, issue 18): the snapshot it
    finishes is the one taken in one go; a scan closed unused stops git and removes its
    index copy; a failing ``xp commit`` closes its scan."""
    from xp.gitstore.snapshot import start_scan

    (repo / "train.py").write_text("print('edited')\n")
    (repo / "new.txt").write_text("new\n")
    xp_repo = find_repo()
    scan = start_scan(xp_repo)
    early = snapshot(xp_repo, 10**9, scan=scan)
    assert scan.closed
    assert not scan.tmp_index.exists()
    assert early.tree == snapshot(xp_repo, 10**9).tree == _git_tree_of_workspace(repo)
    unused = start_scan(xp_repo)
    assert unused.tmp_index.exists()
    unused.close()
    unused.close()  # twice is fine
    assert unused.proc.returncode is not None
    assert not unused.tmp_index.exists()
    (repo / "params.yaml").write_text("lr: [unclosed\n")
    assert subprocess.run(["xp", "commit"], cwd=repo, capture_output=True).returncode == 1
    left = list((repo / ".git" / "xp" / "tmp").rglob("index-*"))
    assert left == []
