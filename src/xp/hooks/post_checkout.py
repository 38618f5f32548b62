"""``xp hook post-checkout``: put the artifacts of the checked-out commit's run record back
where they were logged from.

The record may come from someone else's clone, so every placement is checked: the path is
clean and stays inside the work tree once git has written the commit's files (symlinks
included), the file is written without following symlinks, and its bytes are re-hashed on
the way: a corrupt cached object is dropped and fetched again, never copied out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp.artifacts.manifests import Needed
from xp.gitstore.repo import GitRepo
from xp.hooks.settings import settings


@dataclass
class CheckoutResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a different file was there: left alone
    absent: list[str] = field(default_factory=list)  # on no store
    corrupt: list[str] = field(default_factory=list)  # no good copy anywhere


def post_checkout(repo: GitRepo, *, new_head: str, branch_checkout: bool) -> CheckoutResult:
    """Put the artifacts of the checked-out commit's run record where they were logged from.

    Never overwrites a file with other content (it is reported as kept); objects missing
    from the cache come from the default artifact remote, re-hashed on arrival.
    """
    result = CheckoutResult()
    conf = settings(repo)
    if not branch_checkout or conf.post_checkout == "off":
        return result
    from xp.artifacts import cache
    from xp.artifacts.manifests import cat_files, check_entry, parse_entries
    from xp.sharing.checkout import work_tree_destination

    spec = f"{new_head}:{fmt.RECORD_DIR}/{fmt.ARTIFACTS_FILE}"
    data = cat_files(repo, [spec]).get(spec)
    if not data:
        return result
    wanted: list[tuple[Needed, str]] = []
    for entry in parse_entries(data, spec):
        path, sha, size = check_entry(entry, spec)
        source = entry.get("source")
        where = work_tree_destination(repo, source if isinstance(source, str) else path)
        rel = where.relative_to(repo.worktree).as_posix()
        wanted.append((Needed(new_head[:12], path, sha, size, "artifact"), rel))
    from xp.sharing.push_pull import download_missing

    fetched = download_missing(repo, items=[n for n, _ in wanted])
    absent = {n.sha256 for n in fetched.absent}
    cache_dir = cache.cache_dir(repo)
    links = cache.LINK_KINDS if conf.post_checkout == "link" else cache.DEFAULT_LINKS
    for item, rel in wanted:
        target = repo.worktree / rel
        obj = cache.object_path(cache_dir, item.sha256)
        try:
            st: os.stat_result | None = os.lstat(target)
        except FileNotFoundError:
            st = None
        if item.sha256 in absent or not obj.is_file():
            result.absent.append(rel)
        elif (
            st is not None
            and stat.S_ISREG(st.st_mode)
            and cache.hash_file(target)[0] == (item.sha256)
        ):
            result.unchanged.append(rel)
        elif st is not None:
            result.kept.append(rel)  # another file, a folder or a symlink: never replaced
        elif _place(repo, item, obj, target, links):
            result.written.append(rel)
        else:
            result.corrupt.append(rel)
    return result


def _place(repo: GitRepo, item: Needed, obj: Path, target: Path, links: tuple[str, ...]) -> bool:
    """Write one artifact, re-hashed; a corrupt cached object is replaced from the remote
    once. False when no good copy can be had."""
    from xp.artifacts import cache
    from xp.errors import CorruptObjectError
    from xp.sharing.push_pull import download_missing

    for attempt in (1, 2):
        try:
            cache.materialise(obj, target, links, root=repo.worktree, sha256=item.sha256)
            return True
        except CorruptObjectError:
            obj.unlink(missing_ok=True)
            if attempt == 2:
                return False
            try:
                if download_missing(repo, items=[item]).absent:
                    return False
            except CorruptObjectError:  # the remote's copy is bad too
                return False
    return False  # pragma: no cover - the loop always returns
