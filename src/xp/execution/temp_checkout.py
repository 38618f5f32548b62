"""Temporary checkouts: a run's code in a folder of its own, so the user's files stay untouched.

Each one is a ``git worktree add --detach`` of the baseline commit in this process's own
temporary folder (``fsutil.private_tmp``: ``<git common dir>/xp/tmp/<pid>-<random>/``), with a
given tree (the workspace snapshot, or a recorded run's code) read into its index and files.
Objects, refs and the artifact cache are shared with the main clone, so a run recorded there
lands in the user's ``refs/xp/runs/`` directly, and parallel sweep points each get their own
folder and index. A checkout left behind by a killed process is removed by the next xp
command (``execution.cleanup``).

Ignored files (data, outputs) are not part of any tree; the ``data:`` paths of
``.xp/config.yaml`` are put in from the workspace as files of their own (reflink, else a
copy), so a command that writes into its inputs never changes the user's files; hard links
(no copy, but shared with the workspace) only when the cache link setting opts into them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from xp import format as fmt
from xp import fsutil
from xp.artifacts import cache
from xp.errors import InvalidValueError, RepositoryError
from xp.gitstore import worktree
from xp.gitstore.repo import GitRepo, find_repo

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,80}$")


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
    if not _LABEL_RE.match(label):
        raise InvalidValueError(f"temporary checkout label {label!r}: letters, digits and '-'")
    path = fsutil.private_tmp(repo.xp_dir) / f"{label}-{secrets.token_hex(3)}"
    try:
        worktree.add_detached(repo, path, baseline, tree, drop=fmt.RECORD_DIR)
        shutil.rmtree(path / fmt.RECORD_DIR, ignore_errors=True)
        if link:
            kinds = cache.settings(repo).links
            for rel in link:
                link_in(repo.worktree / rel, path, rel, kinds)
        yield find_repo(path)
    finally:
        remove(repo, path)


@contextlib.contextmanager
def temp_worktree(repo: GitRepo, commit: str, label: str) -> Iterator[GitRepo]:
    """A detached worktree at ``commit`` with nothing checked out yet (``git bisect
    --no-checkout`` moves in it; ``worktree.checkout_clean`` fills it when a command must run);
    removed after."""
    if not _LABEL_RE.match(label):
        raise InvalidValueError(f"temporary checkout label {label!r}: letters, digits and '-'")
    path = fsutil.private_tmp(repo.xp_dir) / f"{label}-{secrets.token_hex(3)}"
    try:
        worktree.add_unpopulated(repo, path, commit)
        yield find_repo(path)
    finally:
        remove(repo, path)


def link_in(src: Path, root: Path, rel: str, kinds: tuple[str, ...] = fsutil.SAFE_KINDS) -> bool:
    """Put ``src`` (a file or folder the checkout lacks, e.g. ignored data) at ``root/rel``.

    Each file is placed by the first of ``kinds`` (reflink, else a copy by default: a file of
    its own, so a command writing into its inputs cannot change the workspace's), as a real
    file inside the checkout (xp refuses inputs that resolve outside the project, which a
    symlink would), through folders opened without following symlinks out of ``root``.
    Returns False when there is nothing to put or something is there already.
    """
    dest = root / rel
    if not src.exists() or os.path.lexists(dest):
        return False
    try:
        if src.is_dir():
            for dirpath, _dirs, names in os.walk(src):
                for name in names:
                    full = Path(dirpath) / name
                    target = dest / full.relative_to(src)
                    fsutil.place(full, target, kinds, writable=True, root=root)
        else:
            fsutil.place(src, dest, kinds, writable=True, root=root)
    except OSError:
        return False
    return True


def remove(repo: GitRepo, path: Path) -> None:
    """Drop the worktree and its admin folder; never fails the run it served."""
    worktree.remove(repo, path)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        worktree.prune(repo)
