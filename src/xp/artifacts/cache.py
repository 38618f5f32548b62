"""Content-addressed side cache for artifacts: ``<cache dir>/sha256/ab/cd/<hash>``.

The cache dir is ``<git common dir>/xp/cache`` unless configured (``XP_CACHE_DIR``, git config
``xp.cacheDir`` or ``cache.dir`` in ``.xp/config.yaml``), so several clones can share one.
Objects land under a temp name and are renamed into place read-only: a reader never sees a
partial object, and two writers of the same content both succeed with one copy kept.
Materialising an object into a work tree makes a file of its own (a reflink where the file
system can, else a copy), so a script that rewrites it can never change the cached object;
hard links, which share the inode with the cache, are an opt-in (``cache.link``). It never
leaves a partial file under the destination name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from xp import fsutil
from xp.errors import ConfigError, CorruptObjectError, InvalidValueError, StorageError

if TYPE_CHECKING:
    from xp.gitstore.repo import GitRepo
    from xp.record.model import FileEntry

CHUNK = 1 << 20
COPY_CHUNK = 4 << 20
LINK_KINDS = fsutil.LINK_KINDS
# Never hard links by default: root ignores the object's 0444 mode, so a script rewriting a
# hard-linked model in place would rewrite the cached object (and every run that names it).
DEFAULT_LINKS = fsutil.SAFE_KINDS
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
Announce = Callable[[str], None]  # called with an object's sha256 before it is installed


def object_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "sha256" / sha256[:2] / sha256[2:4] / sha256


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_RE.match(value) is not None


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSettings:
    """Where the cache is and how objects are materialised; see docs/artifacts.md."""

    dir: Path
    links: tuple[str, ...] = DEFAULT_LINKS
    shared: bool = False


def parse_links(value: object, source: str) -> tuple[str, ...]:
    """``reflink,hardlink,copy`` or a YAML list -> an ordered tuple of link kinds."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{source}: expected link kinds like 'reflink,hardlink,copy'")
    kinds = tuple(str(i).strip().lower().replace("-", "").replace("_", "") for i in items)
    bad = [k for k in kinds if k not in LINK_KINDS]
    if bad:
        raise ConfigError(
            f"{source}: unknown link kind {bad[0]!r}; use some of {', '.join(LINK_KINDS)}"
        )
    return kinds


_git_memo: dict[tuple[object, ...], dict[str, str]] = {}


def _git_settings(repo: GitRepo) -> dict[str, str]:
    """``xp.cache*`` from git config; remembered until a config file changes (log_artifact
    asks on every call, and a git process per call would cost milliseconds)."""
    from xp.gitstore import gitconfig

    key = gitconfig.config_key(repo)
    if key not in _git_memo:
        _git_memo[key] = {
            k.lower(): v for k, v in gitconfig.get_regexp(repo, r"^xp\.cache").items()
        }
    return _git_memo[key]


def settings(repo: GitRepo) -> CacheSettings:
    """Environment, then git config (per clone), then the project config, then defaults."""
    from xp.config import load_config

    git_cfg = _git_settings(repo)
    section = load_config(repo).raw.get("cache") or {}
    if not isinstance(section, dict):
        raise ConfigError(".xp/config.yaml: 'cache' must be a mapping (dir, link); fix the file")
    raw_dir = os.environ.get("XP_CACHE_DIR") or git_cfg.get("xp.cachedir") or section.get("dir")
    links: object = (
        os.environ.get("XP_CACHE_LINK") or git_cfg.get("xp.cachelink") or section.get("link")
    )
    default = repo.xp_dir / "cache"
    if raw_dir:
        path = Path(os.path.expanduser(str(raw_dir)))
        directory = path if path.is_absolute() else repo.worktree / path
    else:
        directory = default
    shared = os.path.abspath(directory) != os.path.abspath(default)
    kinds = parse_links(links, "cache link setting") if links else DEFAULT_LINKS
    return CacheSettings(dir=directory, links=kinds, shared=shared)


def cache_dir(repo: GitRepo) -> Path:
    """The cache this clone writes to; a shared one learns about the clone (for ``xp gc``)."""
    conf = settings(repo)
    if conf.shared:
        register_clone(conf.dir, repo.common_dir)
    return conf.dir


def register_clone(directory: Path, common_dir: Path) -> None:
    """Note ``common_dir`` in ``<cache>/clones/`` so gc in any clone keeps its objects."""
    key = hashlib.sha256(str(common_dir.resolve()).encode()).hexdigest()[:16]
    marker = directory / "clones" / key
    if marker.exists():
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        fsutil.atomic_write(marker, str(common_dir.resolve()).encode() + b"\n")
    except OSError as exc:
        raise StorageError(
            f"cannot register this clone in the shared cache {directory}: {exc.strerror};"
            " check the folder's permissions"
        ) from None


def registered_clones(directory: Path) -> list[Path]:
    out = []
    with contextlib.suppress(FileNotFoundError):
        for marker in sorted((directory / "clones").iterdir()):
            with contextlib.suppress(OSError):
                out.append(Path(marker.read_text().strip()))
    return out


# -- hashing and adding --------------------------------------------------------------------


def hash_file(path: Path) -> tuple[str, int]:
    """Streaming sha256 into one reused buffer: constant memory, hashlib's own speed."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


def _write_all(fout: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[fout.write(view) or 0 :]


def copy_hashing(
    src: Path | str, dst: Path | str, on_bytes: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Copy ``src`` to the new file ``dst`` and hash what was written, reading it once;
    ``on_bytes(n)`` after each chunk written (a progress bar by bytes).

    Past the first chunk a helper thread hashes chunk n while this one writes it (hashlib
    drops the GIL), so a large copy costs about max(hash, write) instead of their sum.
    """
    h = hashlib.sha256()
    with open(src, "rb", buffering=0) as fin, open(dst, "xb", buffering=0) as fout:
        # a small file is read into a buffer of its size (+1 to see its end): a COPY_CHUNK
        # buffer is an mmap, a page fault and an munmap per file (1,000 small artifacts)
        want = min(COPY_CHUNK, os.fstat(fin.fileno()).st_size + 1)
        chunk = fin.read(want)
        size = len(chunk)
        if len(chunk) < want:
            h.update(chunk)
            _write_all(fout, chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            return h.hexdigest(), size
        from concurrent.futures import Future, ThreadPoolExecutor  # big files only

        with ThreadPoolExecutor(1, thread_name_prefix="xp-hash") as pool:
            pending: Future[None] | None = None
            while chunk:
                if pending is not None:
                    pending.result()
                pending = pool.submit(h.update, chunk)
                _write_all(fout, chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
                chunk = fin.read(COPY_CHUNK)
                size += len(chunk)
            if pending is not None:
                pending.result()
    return h.hexdigest(), size


def tmp_path(cache_dir: Path) -> Path:
    tmp_dir = cache_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return tmp_dir / f"{os.urandom(8).hex()}.tmp"


def _freshen(path: Path) -> bool:
    """Whether the object exists; its mtime is now if we may set it (a shared cache's object
    of another user keeps its own, and lives by the grace period of that user's gc)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(path)
    return True


def install(cache_dir: Path, tmp: Path, sha: str, announce: Announce | None = None) -> Path:
    """Rename a complete temp file into place read-only; if the object exists, drop ours.

    ``announce(sha)`` runs first: a live run journals the hash there, so ``xp gc``, which reads
    journals before it deletes, keeps the object (see ``xp.artifacts.gc``). An existing object
    is freshened (mtime now) instead, as git freshens objects it would have written; if
    ``xp gc`` took it away meanwhile, ours goes in.
    """
    if announce is not None:
        announce(sha)
    final = object_path(cache_dir, sha)
    if _freshen(final):
        tmp.unlink()
        return final
    os.chmod(tmp, 0o444)
    os.utime(tmp)  # the copy may have started before a gc did: its mtime must say "now"
    for attempt in range(5):
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
            break
        except FileNotFoundError:  # an `xp gc` of an old xp pruned the empty folder meanwhile
            if attempt == 4:
                raise
    return final


def add_file(cache_dir: Path, src: Path, announce: Announce | None = None) -> tuple[str, int]:
    """Store ``src`` in the cache; returns (sha256, size). Reflinks where the fs can."""
    tmp: Path | None = None
    try:
        tmp = tmp_path(cache_dir)
        if fsutil.reflink(src, tmp):
            sha, size = hash_file(tmp)  # the clone is ours: it cannot change under us
        else:
            sha, size = copy_hashing(src, tmp)
        install(cache_dir, tmp, sha, announce)
        return sha, size
    except StorageError:  # the run's journal could not take the hash: nothing installed
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise StorageError(
            f"cannot store {src} in the artifact cache {cache_dir}: {exc.strerror};"
            " free disk space or fix permissions and retry"
        ) from None


def add_bytes(cache_dir: Path, data: bytes, announce: Announce | None = None) -> str:
    sha = hashlib.sha256(data).hexdigest()
    if announce is not None:
        announce(sha)
    if _freshen(object_path(cache_dir, sha)):
        return sha
    tmp = tmp_path(cache_dir)
    try:
        tmp.write_bytes(data)
        install(cache_dir, tmp, sha)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(
            f"cannot write to the artifact cache {cache_dir}: {exc.strerror}; free disk space"
        ) from None
    return sha


def verify(cache_dir: Path, sha: str) -> bool:
    """Whether the cached object exists and still hashes to its name."""
    path = object_path(cache_dir, sha)
    try:
        return hash_file(path)[0] == sha
    except FileNotFoundError:
        return False


# -- names and folders ---------------------------------------------------------------------


def clean_name(name: str) -> str:
    """An artifact's recorded path: relative, no '..', so restoring it cannot escape."""
    norm = name.replace("\\", "/").strip()
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or norm.startswith("/") or ".." in parts or ":" in parts[0][1:2]:
        raise InvalidValueError(
            f"artifact name {name!r} must be a relative path inside the run (no '..', not absolute)"
        )
    return "/".join(parts)


def _walk(root: Path) -> list[tuple[Path, str]]:
    """(file, path relative to root) for every file below root; symlinks must stay inside."""
    real_root = root.resolve()
    out: list[tuple[Path, str]] = []
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidValueError(
                        f"{full} links to {target}, outside {root}; copy the file in instead"
                    )
                if target.is_dir():
                    continue
            out.append((full, full.relative_to(root).as_posix()))
    return out


def add_path(
    cache_dir: Path, src: Path, name: str, announce: Announce | None = None
) -> list[FileEntry]:
    """Cache a file or every file of a folder; entries are named ``name[/relpath]``."""
    from xp.record.model import FileEntry  # PyYAML comes with it: not for a push's upload

    if src.is_dir():
        return [
            FileEntry(path=f"{name}/{rel}", sha256=sha, size=size)
            for full, rel in _walk(src)
            for sha, size in [add_file(cache_dir, full, announce)]
        ]
    sha, size = add_file(cache_dir, src, announce)
    return [FileEntry(path=name, sha256=sha, size=size)]


def manifest_line(sha: str, size: int, rel: str) -> str:
    return f"{sha}  {size}  {rel}\n"


def parse_manifest(data: bytes, source: str) -> list[FileEntry]:
    """A folder input's manifest (``<sha256>  <size>  <relpath>`` lines) -> entries."""
    from xp.record.model import FileEntry

    entries = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        sha, _, rest = line.partition("  ")
        size, _, rel = rest.partition("  ")
        if not is_sha256(sha) or not size.isdigit() or not rel:
            raise CorruptObjectError(f"{source} line {n}: not a folder manifest line")
        entries.append(FileEntry(path=rel, sha256=sha, size=int(size)))
    return entries


def hash_input(
    src: Path, name: str, cache_dir: Path | None = None, announce: Announce | None = None
) -> FileEntry:
    """A data version: the file's sha256, or for a folder the sha256 of its sorted manifest.

    With a cache, a folder's manifest is stored too (its name is the folder's hash), so the
    folder can be restored from the record alone.
    """
    from xp.record.model import FileEntry

    if not src.is_dir():
        sha, size = add_file(cache_dir, src, announce) if cache_dir else hash_file(src)
        return FileEntry(path=name, sha256=sha, size=size)
    manifest = []
    total = 0
    for full, rel in _walk(src):
        sha, size = add_file(cache_dir, full, announce) if cache_dir else hash_file(full)
        manifest.append(manifest_line(sha, size, rel))
        total += size
    data = "".join(manifest).encode()
    digest = add_bytes(cache_dir, data, announce) if cache_dir else hashlib.sha256(data).hexdigest()
    return FileEntry(path=name, sha256=digest, size=total, files=len(manifest), kind="dir")


# -- materialising -------------------------------------------------------------------------


def materialise(
    obj: Path,
    dest: Path,
    links: tuple[str, ...] = DEFAULT_LINKS,
    *,
    root: Path | None = None,
    sha256: str | None = None,
) -> str:
    """Put the cached object ``obj`` at ``dest`` by the first link kind that works (see
    ``fsutil.place``: never through a symlink out of ``root``; with ``sha256``, the bytes
    are checked on the way); returns the kind. A reflink or copy is a writable file of its
    own; a hard link (opt-in) is the cached object itself and stays read-only."""
    return fsutil.place(obj, dest, links, writable=True, root=root, sha256=sha256)


def iter_objects(cache_dir: Path) -> Iterator[tuple[str, Path]]:
    """(sha256, path) of every object in the cache."""
    root = cache_dir / "sha256"
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if is_sha256(name):
                yield name, Path(dirpath) / name
