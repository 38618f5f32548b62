"""``xp gc``: delete cache objects that no run, branch, tag or live run refers to.

"Refers to" is read from every commit reachable from any ref or reflog (runs, fetched runs,
branches, tags, stash) of every clone using the cache: a shared cache remembers its clones
in ``<cache>/clones/``. Journals of live runs count too, and objects touched in the last
hour are kept.

Why a run that logs or commits while gc runs never loses an object (docs/artifacts.md):
a run journals an object's hash *before* it installs or freshens the object
(``cache.install``), and a committing run creates its ref *before* it deletes its journal.
gc notes the time, reads the journals, and only then the refs, so every object is either in
what gc read, or was installed or freshened after gc started (and is spared as recent). An
object gc decides to delete is first renamed aside and its mtime read again: a run that
freshened it in between gets it back; one that comes after finds it gone and installs its own.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp.artifacts import cache, manifests
from xp.errors import ConfigError, CorruptObjectError, GitError, StorageError
from xp.gitstore import catfile, history, protect
from xp.gitstore.repo import GitRepo
from xp.record import journal

GRACE_SECONDS = 3600  # objects younger than this stay, whoever refers to them
# File times come from a coarse kernel clock (a tick behind time.time()) and some file systems
# keep 1-2 s: an object freshened just after gc started may look that much older.
CLOCK_SLACK = 2.0
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
        for c in _reachable(repo)
        for name in (fmt.ARTIFACTS_FILE, fmt.INPUTS_FILE)
    ]
    return catfile.blob_ids(repo, specs)


def _reachable(repo: GitRepo) -> list[str]:
    """Every reachable commit. A ``git gc --prune=now`` running now (or one that has just
    ended) may have pruned a run's fresh commit, which the run writes again once that gc has
    ended (``xp.gitstore.protect``): wait for it then, instead of failing (or, worse, reading
    fewer refs); a ref still broken after that is an error."""
    for _ in range(3):
        try:
            return history.reachable(repo.common_dir)
        except GitError:
            pid = protect.gc_running(repo.common_dir)
            if pid is not None:
                protect.wait_for_gc(repo.common_dir, pid)
            time.sleep(0.2)  # the run's own check of its commit comes right after
    return history.reachable(repo.common_dir)


def _journaled(common_dir: Path) -> tuple[set[str], list[str]]:
    """Every sha256 named in a journal or part of a live (or dead, unrecovered) run, and
    those that name a folder input's manifest."""
    keep: set[str] = set()
    dirs: list[str] = []
    journals = common_dir / "xp" / "journal"
    try:
        paths = list(journals.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return keep, dirs
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        keep.update(m.decode() for m in _HEX64.findall(data))
        dirs += journal.input_dirs(data)
    return keep, dirs


def referenced(common_dir: Path, cache_dir: Path) -> set[str]:
    """Every object sha256 the clone at ``common_dir`` still needs.

    Journals are read before refs: a run that commits in between has its ref by then.
    """
    keep, dirs = _journaled(common_dir)
    repo = GitRepo(worktree=common_dir, git_dir=common_dir, common_dir=common_dir)
    blobs = sorted(_reachable_blobs(repo))
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
    for sha in dirs:  # a folder input keeps its manifest and the files it lists
        obj = cache.object_path(cache_dir, sha)
        try:
            keep.update(e.sha256 for e in cache.parse_manifest(obj.read_bytes(), sha))
        except (OSError, CorruptObjectError):
            continue
    return keep


def gc(repo: GitRepo, *, dry_run: bool = False, grace: float = GRACE_SECONDS) -> GCResult:
    """Delete unreferenced objects not used in the last ``grace`` seconds (see the module)."""
    conf = cache.settings(repo)
    result = GCResult(conf.dir)
    started = time.time()
    if not dry_run:
        _restore_aside(conf.dir)
    clones = [repo.common_dir]
    if conf.shared:
        cache.register_clone(conf.dir, repo.common_dir)
        clones += [c for c in cache.registered_clones(conf.dir) if c != repo.common_dir.resolve()]
    keep: set[str] = set()
    for common in clones:
        if (common / "objects").is_dir():
            result.clones.append(common)
            keep |= referenced(common, conf.dir)
    cutoff = started - max(0.0, grace) - CLOCK_SLACK
    for sha, path in cache.iter_objects(conf.dir):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if sha in keep or st.st_mtime >= cutoff:
            result.kept += 1
            continue
        if not dry_run:
            deleted = _delete(conf.dir, path, cutoff)
            if deleted is None:
                result.kept += 1
                continue
            st = deleted
        result.removed += 1
        if st.st_nlink == 1:  # a hard-linked copy in a work tree keeps its blocks
            result.bytes_freed += st.st_size
    now = time.time()
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
        _prune_dirs(conf.dir / "sha256", now - GRACE_SECONDS)
    return result


def _delete(cache_dir: Path, path: Path, cutoff: float) -> os.stat_result | None:
    """Delete an object unless it was freshened after ``cutoff``; its stat when deleted.

    Renamed aside first, then looked at again: a run that freshened it between our first look
    and the rename gets it back; one that comes later finds no object and installs its own.
    """
    aside = cache.tmp_path(cache_dir).with_name(f"{path.name}.{os.getpid()}.gc")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(
            f"cannot delete {path}: {exc.strerror}; check the cache's permissions"
        ) from None
    try:
        st = aside.stat()
        if st.st_mtime >= cutoff:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(aside, path)  # a writer that installed it meanwhile wrote the same bytes
            return None
        aside.unlink()
    except FileNotFoundError:
        return None
    return st


def _restore_aside(cache_dir: Path) -> None:
    """Put back objects a gc that was killed had renamed aside (``<sha>.<pid>.gc``): whether
    they were to go is decided again, now."""
    try:
        names = os.listdir(cache_dir / "tmp")
    except OSError:
        return
    for name in names:
        sha, _, rest = name.partition(".")
        pid, _, suffix = rest.partition(".")
        if suffix != "gc" or not cache.is_sha256(sha) or not pid.isdigit() or _alive(int(pid)):
            continue
        aside = cache_dir / "tmp" / name
        target = cache.object_path(cache_dir, sha)
        try:
            if target.exists():
                aside.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(aside, target)
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune_dirs(root: Path, before: float) -> None:
    """Remove empty object folders last changed before ``before`` (a writer may have just
    made one to rename an object into)."""
    for dirpath, dirs, files in os.walk(root, topdown=False):
        if not dirs and not files and Path(dirpath) != root:
            try:
                if os.stat(dirpath).st_mtime < before:
                    os.rmdir(dirpath)
            except OSError:
                continue
