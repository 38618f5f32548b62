"""``xp gc``: delete cache objects that no run, branch, tag or live run refers to.

"Refers to" is read from every commit reachable from any ref or reflog (runs, fetched runs,
branches, tags, stash) of every clone using the cache: a shared cache remembers its clones
in ``<cache>/clones/``. Journals of live runs count too, and objects touched in the last
hour are kept, so a run logging an artifact right now never loses it.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp.artifacts import cache, manifests
from xp.errors import ConfigError, CorruptObjectError, StorageError
from xp.gitstore import catfile, history
from xp.gitstore.repo import GitRepo

GRACE_SECONDS = 3600  # objects younger than this stay: a live run may be about to record them
_HEX64 = re.compile(rb"\b[0-9a-f]{64}\b")


@dataclass
class GCResult:
    cache_dir: Path
    removed: int = 0
    bytes_freed: int = 0
    kept: int = 0
    temp_removed: int = 0
    clones: list[Path] = field(default_factory=list)


def _reachable_blobs(repo: GitRepo) -> set[str]:
    """The artifacts.yaml / inputs.yaml blob ids of every commit any ref or reflog reaches."""
    specs = [
        f"{c}:{fmt.RECORD_DIR}/{name}"
        for c in history.reachable(repo.common_dir)
        for name in (fmt.ARTIFACTS_FILE, fmt.INPUTS_FILE)
    ]
    return catfile.blob_ids(repo, specs)


def referenced(common_dir: Path, cache_dir: Path) -> set[str]:
    """Every object sha256 the clone at ``common_dir`` still needs."""
    keep: set[str] = set()
    repo = GitRepo(worktree=common_dir, git_dir=common_dir, common_dir=common_dir)
    blobs = sorted(_reachable_blobs(repo))
    dirs: list[str] = []
    for blob_id, data in manifests.cat_files(repo, blobs).items():
        try:
            entries = manifests.parse_entries(data, f"blob {blob_id[:12]}")
        except ConfigError:
            keep.update(m.decode() for m in _HEX64.findall(data))  # damaged: keep all it names
            continue
        for entry in entries:
            sha = entry.get("sha256")
            if isinstance(sha, str):
                keep.add(sha)
                if entry.get("kind") == "dir":
                    dirs.append(sha)
    journals = common_dir / "xp" / "journal"
    if journals.is_dir():
        for path in journals.iterdir():
            try:
                keep.update(m.decode() for m in _HEX64.findall(path.read_bytes()))
            except OSError:
                continue
    for sha in dirs:  # a folder input keeps its manifest and the files it lists
        obj = cache.object_path(cache_dir, sha)
        try:
            keep.update(e.sha256 for e in cache.parse_manifest(obj.read_bytes(), sha))
        except (OSError, CorruptObjectError):
            continue
    return keep


def gc(repo: GitRepo, *, dry_run: bool = False) -> GCResult:
    conf = cache.settings(repo)
    result = GCResult(conf.dir)
    clones = [repo.common_dir]
    if conf.shared:
        cache.register_clone(conf.dir, repo.common_dir)
        clones += [c for c in cache.registered_clones(conf.dir) if c != repo.common_dir.resolve()]
    keep: set[str] = set()
    for common in clones:
        if (common / "objects").is_dir():
            result.clones.append(common)
            keep |= referenced(common, conf.dir)
    now = time.time()
    for sha, path in cache.iter_objects(conf.dir):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if sha in keep or now - st.st_mtime < GRACE_SECONDS:
            result.kept += 1
            continue
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(
                    f"cannot delete {path}: {exc.strerror}; check the cache's permissions"
                ) from None
        result.removed += 1
        if st.st_nlink == 1:  # a hard-linked copy in a work tree keeps its blocks
            result.bytes_freed += st.st_size
    tmp = conf.dir / "tmp"
    if tmp.is_dir():
        for path in tmp.iterdir():
            try:
                if now - path.stat().st_mtime > GRACE_SECONDS:
                    if not dry_run:
                        path.unlink()
                    result.temp_removed += 1
            except OSError:
                continue
    if not dry_run:
        _prune_dirs(conf.dir / "sha256")
    return result


def _prune_dirs(root: Path) -> None:
    for dirpath, dirs, files in os.walk(root, topdown=False):
        if not dirs and not files and Path(dirpath) != root:
            try:
                os.rmdir(dirpath)
            except OSError:
                continue
