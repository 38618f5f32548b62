"""``xp get RUN [PATH...] [-o DIR]``: write a run's artifacts (and cached data inputs) out.

Objects come from the local cache, else from the artifact remote into the cache (re-hashed on
the way in); local objects are re-hashed too, so a corrupt cache is noticed instead of copied.
Paths come from records other people wrote, so each must be clean and land inside DIR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from xp import fsutil
from xp.artifacts import cache, manifests
from xp.artifacts.manifests import Needed
from xp.artifacts.transfer import Progress
from xp.errors import (
    CorruptObjectError,
    InvalidValueError,
    RemoteError,
    RunNotFoundError,
    StorageError,
)
from xp.gitstore.repo import GitRepo
from xp.sharing.push_pull import download_missing, expand_dirs, lost_message, run_labels


@dataclass
class GetResult:
    run: str
    commit: str
    written: list[tuple[str, Path, str]] = field(default_factory=list)  # (path, dest, link kind)
    unchanged: list[str] = field(default_factory=list)
    fetched: int = 0  # objects downloaded from the remote
    fetched_bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # data inputs with no copy anywhere


def _matches(item: Needed, key: str) -> bool:
    """PATH names the entry, a folder above it, or a file inside a folder input."""
    if not key or item.path == key or item.path.startswith(key + "/"):
        return True
    return item.kind == "input-dir" and key.startswith(item.path + "/")


def _select(items: list[Needed], paths: tuple[str, ...], run: str) -> list[Needed]:
    if not paths:
        return items
    chosen: list[Needed] = []
    for want in paths:
        key = want.replace("\\", "/").strip("/")
        hits = [i for i in items if _matches(i, key)]
        if not hits:
            known = sorted({i.path.split("/")[0] for i in items})
            raise RunNotFoundError(
                f"run {run} has no artifact or input {want!r}; it has:"
                f" {', '.join(known[:10]) or 'none'}" + (" ..." if len(known) > 10 else "")
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen


def _destination(out: Path, path: str) -> Path:
    """``out/path``, refusing a path or an existing symlink that would lead outside ``out``."""
    if cache.clean_name(path) != path:
        raise InvalidValueError(f"refusing to write {path!r}: not a clean relative path")
    fsutil.check_inside(out, path)
    dest = out / path
    real = Path(os.path.realpath(dest))
    if not real.is_relative_to(out):
        raise InvalidValueError(
            f"refusing to write {path!r}: it would land at {real}, outside {out}"
            " (a symlink on the way?); choose another -o DIR"
        )
    return dest


def _same_file(dest: Path, obj: Path, sha: str) -> bool:
    try:
        st, so = dest.stat(), obj.stat()
    except FileNotFoundError:
        return False
    if (st.st_dev, st.st_ino) == (so.st_dev, so.st_ino):
        return True
    return st.st_size == so.st_size and cache.hash_file(dest)[0] == sha


def get(
    repo: GitRepo,
    *,
    run: str,
    paths: tuple[str, ...] = (),
    out_dir: str | os.PathLike[str] | None = None,
    store: str | None = None,
    links: tuple[str, ...] | None = None,
    force: bool = False,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> GetResult:
    """Write the run's artifacts and data inputs (or those ``paths`` name) into ``out_dir``.

    A data input with no copy anywhere (logged without ``cache=True``, or never pushed) is
    skipped with a note unless it was asked for by name; a missing artifact is an error.
    """
    from xp.query.resolve import resolve

    _ref, commit = resolve(repo, run)
    label = run_labels(repo, [commit])[commit]
    items = manifests.needed(repo, {commit: label})
    if not items:
        raise RunNotFoundError(f"run {label} has no artifacts or data inputs to get")
    conf = cache.settings(repo)
    cache_dir = cache.cache_dir(repo)
    result = GetResult(label, commit)
    chosen = _select(items, paths, label)
    out = Path(out_dir if out_dir is not None else os.getcwd()).resolve()

    # Folder inputs need their manifest before their files can be named.
    dirs = [i for i in chosen if i.kind == "input-dir"]
    if dirs:
        manifests_ = [Needed(d.run, d.path, d.sha256, 0, "input") for d in dirs]
        gone = _fetch(repo, manifests_, store, jobs, None, result, named=bool(paths))
        dirs = [d for d in dirs if d.sha256 not in gone]
        chosen = [i for i in chosen if i.kind != "input-dir" or i.sha256 not in gone]
        chosen, _ = expand_dirs(chosen, cache_dir)
        chosen = [i for i in chosen if not any(i.sha256 == d.sha256 for d in dirs)]
        chosen = _select(chosen, paths, label) if paths else chosen

    corrupt = set()
    for item in chosen:  # a corrupt local object is dropped and fetched again
        obj = cache.object_path(cache_dir, item.sha256)
        if obj.is_file() and not cache.verify(cache_dir, item.sha256):
            obj.unlink()
            corrupt.add(item.sha256)
    gone = _fetch(repo, chosen, store, jobs, progress, result, corrupt, named=bool(paths))
    files = [(i, _destination(out, i.path)) for i in chosen if i.sha256 not in gone]
    for item, dest in files:  # refuse before writing anything
        obj = cache.object_path(cache_dir, item.sha256)
        if dest.is_dir() or (
            dest.exists() and not force and not _same_file(dest, obj, item.sha256)
        ):
            raise StorageError(
                f"{dest} exists with other content; pass --force to overwrite it,"
                " or -o DIR to write elsewhere"
            )

    for item, dest in files:
        obj = cache.object_path(cache_dir, item.sha256)
        if dest.exists() and _same_file(dest, obj, item.sha256):
            result.unchanged.append(item.path)
            continue
        try:
            kind = cache.materialise(obj, dest, links or conf.links, root=out)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot write {dest}: {exc.strerror}; check the folder") from None
        result.written.append((item.path, dest, kind))
    return result


def _fetch(
    repo: GitRepo,
    items: list[Needed],
    store: str | None,
    jobs: int | None,
    progress: Progress | None,
    result: GetResult,
    corrupt: set[str] | None = None,
    *,
    named: bool,
) -> set[str]:
    """Download what the cache lacks; returns the sha256s of data inputs that have no copy
    anywhere and were not asked for by name (noted in ``result.skipped``). Anything else
    that is missing raises."""
    try:
        got = download_missing(repo, items=items, store=store, jobs=jobs, progress=progress)
    except CorruptObjectError as exc:
        raise CorruptObjectError(f"run {result.run}: {exc}") from None
    result.fetched += got.objects
    result.fetched_bytes += got.bytes
    fatal = [
        i for i in got.absent if named or i.kind == "artifact" or (corrupt and i.sha256 in corrupt)
    ]
    if fatal:
        item = fatal[0]
        more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
        if corrupt and item.sha256 in corrupt:
            raise CorruptObjectError(
                f"run {result.run}: {item.path}: the cached object {item.sha256} was corrupt"
                " (removed) and no artifact remote has a good copy; log the file again"
            )
        if item.kind != "artifact":
            raise RemoteError(
                f"run {result.run}: data input {item.path} (sha256 {item.sha256}) is in no"
                f" store{more}; it was logged without cache=True, or never pushed"
            )
        raise RemoteError(lost_message(item, got.store) + more)
    for item in got.absent:
        if item.path not in result.skipped:
            result.skipped.append(item.path)
    return {i.sha256 for i in got.absent}


def list_files(repo: GitRepo, *, run: str) -> list[Needed]:
    """What ``xp get`` could write for ``spec`` (artifacts and data inputs)."""
    from xp.query.resolve import resolve

    _ref, commit = resolve(repo, run)
    return manifests.needed(repo, run_labels(repo, [commit]))


def read_artifact(repo: GitRepo, *, commit: str, path: str, store: str | None = None) -> bytes:
    """The bytes of artifact ``path`` of the run at ``commit``, fetched into the cache from
    the artifact remote when missing there, and checked against their sha256 either way."""
    label = run_labels(repo, [commit])[commit]
    items = [i for i in manifests.needed(repo, {commit: label}) if i.kind == "artifact"]
    item = next((i for i in items if i.path == path), None)
    if item is None:
        raise RunNotFoundError(
            f"run {label} has no artifact {path!r}; list its files with `xp get {label} --list`"
        )
    cache_dir = cache.cache_dir(repo)
    obj = cache.object_path(cache_dir, item.sha256)
    corrupt = set()
    if obj.is_file() and not cache.verify(cache_dir, item.sha256):
        obj.unlink()
        corrupt.add(item.sha256)
    if not obj.is_file():
        _fetch(repo, [item], store, None, None, GetResult(label, commit), corrupt, named=True)
    try:
        return obj.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {obj}: {exc.strerror}; check the cache folder") from None
