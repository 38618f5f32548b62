"""Temporary checkouts: a run's code in a folder of its own, so the user's files stay untouched.

Each one is a ``git worktree add --detach`` of the baseline commit under
``<git common dir>/xp/tmp/``, with a given tree (the workspace snapshot, or a recorded run's
code) read into its index and files. Objects, refs and the artifact cache are shared with the
main clone, so a run recorded there lands in the user's ``refs/xp/runs/`` directly, and
parallel sweep points each get their own folder and index.

Ignored files (data, outputs) are not part of any tree; the ``data:`` paths of
``.xp/config.yaml`` are linked in from the workspace (reflink, else hard link, else copy)
so scripts find their inputs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from xp import format as fmt
from xp import fsutil
from xp.errors import RepositoryError, StorageError
from xp.gitstore import worktree
from xp.gitstore.repo import GitRepo, find_repo


def tmp_root(repo: GitRepo) -> Path:
    return repo.xp_dir / "tmp"


@contextlib.contextmanager
def temp_checkout(
    repo: GitRepo,
    baseline: str | None,
    tree: str,
    label: str,
    link: tuple[str, ...] = (),
) -> Iterator[GitRepo]:
    """A detached worktree at ``baseline`` whose files and index are ``tree``; removed after."""
    if baseline is None:
        raise RepositoryError(
            "a temporary checkout needs a commit to start from and this repository has none;"
            " commit once (git commit) and retry"
        )
    path = tmp_root(repo) / f"{label}-{secrets.token_hex(3)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot make {path.parent}: {exc.strerror}; free disk space") from None
    try:
        worktree.add_detached(repo, path, baseline, tree, drop=fmt.RECORD_DIR)
        shutil.rmtree(path / fmt.RECORD_DIR, ignore_errors=True)
        for rel in link:
            link_in(repo.worktree / rel, path / rel)
        yield find_repo(path)
    finally:
        remove(repo, path)


def link_in(src: Path, dest: Path) -> bool:
    """Put ``src`` (a file or folder the checkout lacks, e.g. ignored data) at ``dest``.

    Each file is a reflink where the file system can, else a hard link, else a copy: the
    path must be a real file inside the checkout (xp refuses inputs that resolve outside the
    project, which a symlink would). A hard link shares the file with the workspace, so a
    command that writes into its inputs changes them there too: data inputs are read-only.
    """
    if not src.exists() or dest.exists() or dest.is_symlink():
        return False
    try:
        if src.is_dir():
            for dirpath, _dirs, names in os.walk(src):
                for name in names:
                    full = Path(dirpath) / name
                    _link_file(full, dest / full.relative_to(src))
        else:
            _link_file(src, dest)
    except OSError:
        return False
    return True


def _link_file(src: Path, dest: Path) -> None:
    fsutil.place(src, dest, fsutil.LINK_KINDS, writable=False)


def remove(repo: GitRepo, path: Path) -> None:
    """Drop the worktree and its admin folder; never fails the run it served."""
    worktree.remove(repo, path)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        worktree.prune(repo)
