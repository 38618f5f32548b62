"""``xp maintenance``: keep a long-lived clone healthy at 100k runs.

Four steps, each safe while runs are being recorded and pushed in this clone:

1. **Pack refs** (first: every later step's git commands then read one file, not 100k):
   loose ``refs/xp/`` files into ``packed-refs`` with ``gitstore.refs.pack_refs`` (the
   packer the index uses: a busy ``packed-refs``, or a ref changing meanwhile, is skipped,
   never overwritten).
2. **Prune** the fetched copies of runs deleted on the server (``refs/xp/remotes/<r>/runs/``),
   as ``git fetch --prune`` would for xp's refspec: one ``git ls-remote`` per remote, then a
   compare-and-swap delete. A server that lists no run at all is left alone (an empty listing
   is more often the wrong URL, or another ref layout, than 100k deleted runs).
3. **Repack** objects: loose objects into a pack (``git repack -d``, what ``git gc --auto``
   does), and every pack into one when there are more than ``gc.autoPackLimit`` (``-A``:
   unreachable objects become loose again, never dropped). Nothing is pruned: a live run's
   snapshot is either in its ``.keep`` pack, which git leaves alone, or loose (its first half
   second), which a repack never deletes (docs/format.md section 6).
4. **Expire cache objects** by ``xp gc``'s own policy (unreferenced and unused for an hour;
   live runs' journaled objects kept).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xp.errors import GitError
from xp.format import RunRef
from xp.gitstore import gitconfig
from xp.gitstore import maintenance as git_maintenance
from xp.gitstore import remote as git_remote
from xp.gitstore.refs import delete_refs, list_refs, loose_refs, pack_refs, packed_refs
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.artifacts.gc import GCResult

AUTO_PACK_LIMIT = 50  # git's gc.autoPackLimit default


@dataclass(frozen=True)
class Sizes:
    """What a clone holds: xp's refs, git's objects, the artifact cache."""

    loose_refs: int  # under refs/xp/
    packed_refs: int  # under refs/xp/
    loose_objects: int
    loose_bytes: int
    packed_objects: int
    packed_bytes: int
    packs: int
    cache_objects: int
    cache_bytes: int


@dataclass
class MaintenanceResult:
    before: Sizes
    after: Sizes
    dry_run: bool = False
    pruned: dict[str, list[str]] = field(default_factory=dict)  # remote -> run ids
    refs_packed: int = 0  # loose refs/xp/ files moved into packed-refs (or that would be)
    repack: str = ""  # "", "incremental" or "full"
    cache: GCResult | None = None
    scheduled: bool = False
    warnings: list[str] = field(default_factory=list)


def _cache_size(directory: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _dirs, files in os.walk(directory / "sha256"):
        for name in files:
            try:
                size += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
            count += 1
    return count, size


def _holds_files(repo: GitRepo) -> bool:
    """Whether the cache holds any file at all (objects, objects set aside, temp files)."""
    from xp.artifacts import cache

    return any(files for _dir, _dirs, files in os.walk(cache.settings(repo).dir))


def sizes(repo: GitRepo) -> Sizes:
    from xp.artifacts import cache

    loose = loose_refs(repo.common_dir, "refs/xp/")
    packed = [n for n in packed_refs(repo.common_dir) if n.startswith("refs/xp/")]
    objects = git_maintenance.count_objects(repo)
    cached = _cache_size(cache.settings(repo).dir)
    return Sizes(
        loose_refs=len(loose),
        packed_refs=len(packed),
        loose_objects=objects.loose,
        loose_bytes=objects.loose_bytes,
        packed_objects=objects.packed,
        packed_bytes=objects.packed_bytes,
        packs=objects.packs,
        cache_objects=cached[0],
        cache_bytes=cached[1],
    )


def stale_copies(repo: GitRepo, remote: str) -> tuple[dict[str, str], str | None]:
    """Fetched run refs of ``remote`` whose run the server no longer lists (name -> sha),
    and a warning when the server could not be asked or lists no run at all."""
    copies = list_refs(repo.common_dir, RunRef.prefix(remote))
    if not copies:
        return {}, None
    try:
        there = git_remote.ls_remote(repo, remote, f"{RunRef.prefix()}*")
    except GitError as exc:
        return {}, f"{remote}: not pruned, the server could not be asked ({exc})"
    if not there:
        return {}, (
            f"{remote}: not pruned, the server lists no run while this clone has"
            f" {len(copies)} fetched; delete them with `xp rm` if that is right"
        )
    prefix = RunRef.prefix(remote)
    gone = {
        name: sha
        for name, sha in copies.items()
        if RunRef.prefix() + name[len(prefix) :] not in there
    }
    return gone, None


def maintenance(
    repo: GitRepo,
    *,
    dry_run: bool = False,
    remotes: list[str] | None = None,
    prune: bool = True,
    full: bool = False,
    cache_gc: bool = True,
    schedule: bool = False,
) -> MaintenanceResult:
    """Prune, pack refs, repack, expire cache objects (see the module); ``dry_run`` reports
    what each step would do and changes nothing."""
    before = sizes(repo)
    result = MaintenanceResult(before=before, after=before, dry_run=dry_run)
    # Refs first: with 100k loose ref files every later git command (ls-remote's compare,
    # the repack's and gc's walks of all refs) reads each file; packed, one file.
    loose = sorted(loose_refs(repo.common_dir, "refs/xp/"))
    if loose:
        if dry_run:
            result.refs_packed = len(loose)
        else:
            done = pack_refs(repo, loose)
            result.refs_packed = len(done.pruned) if done is not None else 0
            if done is None:
                result.warnings.append(
                    "refs not packed: packed-refs is busy (a git command is writing it);"
                    " run `xp maintenance` again"
                )
    if prune:
        for remote in remotes if remotes is not None else git_remote.names(repo):
            gone, warning = stale_copies(repo, remote)
            if warning:
                result.warnings.append(warning)
            if not gone:
                continue
            if not dry_run:
                delete_refs(repo.common_dir, gone)
            prefix = RunRef.prefix(remote)
            result.pruned[remote] = sorted(name[len(prefix) :] for name in gone)
    limit = gitconfig.get(repo, "gc.autoPackLimit")
    many_packs = before.packs > (
        int(limit) if limit and limit.strip().isdigit() else AUTO_PACK_LIMIT
    )
    if full or many_packs:
        result.repack = "full"
    elif before.loose_objects:
        result.repack = "incremental"
    if result.repack and not dry_run:
        git_maintenance.repack(repo, full=result.repack == "full")
    if cache_gc and _holds_files(repo):  # an empty cache: nothing to expire, no walk of runs
        from xp.artifacts.gc import gc

        result.cache = gc(repo, dry_run=dry_run)
    if schedule and not dry_run:
        git_maintenance.register_maintenance(repo)
        result.scheduled = True
    if not dry_run:
        result.after = sizes(repo)
    return result
