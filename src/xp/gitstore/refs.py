"""Refs under refs/xp/, read and written with git's own lock-file protocol.

Creating a ref is compare-and-swap against "absent": take ``<ref>.lock`` with O_EXCL (git's
lock), check neither a loose nor a packed ref exists, then rename the lock into place. Git,
dulwich and ``git pack-refs`` honour the same lock, so concurrent writers never clobber.

Reading costs what the question needs, never the size of the repository: ``packed-refs`` is
sorted (git writes the ``sorted`` trait since 1.8), so one ref is a binary search over the
mapped file and the refs under a prefix are one contiguous slice of it; loose refs are one
file each, and a folder's stamp (inode, mtime) tells a caller that keeps what it read whether
anything in the folder changed (``scan_folder``). dulwich's refs container is avoided because
it parses and validates all of packed-refs on first use (~1 s at 100k runs).

``pack_refs`` moves loose refs under refs/xp/ into packed-refs as ``git pack-refs`` does:
packed-refs.lock held while the loose refs are read and the new file is written, then each
loose file removed under its own lock only if it still holds the packed value.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from xp.errors import RefChangedError, RefExistsError, StorageError
from xp.format import REMOTES_PREFIX, RUNS_PREFIX
from xp.gitstore.repo import GitRepo

_LOCK_RETRY_SECONDS = 5.0
PACKED = "packed-refs"
_SHA_RE = re.compile(rb"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_RECORDS_RE = re.compile(rb"^([0-9a-f]{40,64}) ([^\n]+)\n", re.M)
# A folder modified this recently may change again within the same timestamp tick, unseen by
# its mtime (file systems stamp with a coarse clock; network ones with another machine's):
# its stamp is not trusted until a scan finds it older.
RACY_SECONDS = 2.0


# -- packed-refs ------------------------------------------------------------------------------


class PackedRefs:
    """``packed-refs`` mapped read-only: one ref by binary search, a prefix as a slice.

    A file git did not mark ``sorted`` (git before 1.8.?) is searched line by line.
    """

    def __init__(self, common_dir: Path) -> None:
        self.data: bytes | mmap.mmap = b""
        self._map: mmap.mmap | None = None
        try:
            with open(common_dir / PACKED, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                    self.data = self._map
        except (FileNotFoundError, NotADirectoryError):
            pass
        self.start = 0
        self.sorted = True
        if self.data[:1] == b"#":
            end = self.data.find(b"\n")
            end = len(self.data) if end < 0 else end + 1
            header = bytes(self.data[:end])
            self.start = end
            self.sorted = header.startswith(b"# pack-refs with:") and b" sorted " in header + b" "
        else:
            self.sorted = not self.data  # git writes a header whenever it writes refs

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self.data = b""

    def __enter__(self) -> PackedRefs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record_at(self, pos: int) -> tuple[int, int, bytes]:
        """(start, end after any peeled line, refname) of the record holding byte ``pos``."""
        data = self.data
        start = data.rfind(b"\n", self.start, pos) + 1 if pos > self.start else self.start
        start = max(start, self.start)
        if data[start : start + 1] == b"^":  # a peeled line belongs to the record before it
            start = data.rfind(b"\n", self.start, start - 1) + 1
            start = max(start, self.start)
        nl = data.find(b"\n", start)
        nl = len(data) if nl < 0 else nl
        space = data.find(b" ", start, nl)
        name = bytes(data[space + 1 : nl]) if space >= 0 else b""
        end = nl + 1
        if data[end : end + 1] == b"^":
            peel_nl = data.find(b"\n", end)
            end = len(data) if peel_nl < 0 else peel_nl + 1
        return start, min(end, len(data)), name

    def _lower_bound(self, key: bytes) -> int:
        """Offset of the first record whose name is >= ``key`` (len(data) if none)."""
        lo, hi = self.start, len(self.data)
        while lo < hi:
            mid = (lo + hi) // 2
            start, end, name = self._record_at(mid)
            if name < key:
                lo = end
            else:
                hi = start
        return lo

    def get(self, name: str) -> str | None:
        """The sha ``name`` points at in packed-refs, or None."""
        key = name.encode("utf-8", "surrogateescape")
        if not self.sorted:
            return self._scan().get(name)
        pos = self._lower_bound(key)
        if pos >= len(self.data):
            return None
        _start, _end, found = self._record_at(pos)
        if found != key:
            return None
        sha = bytes(self.data[pos : self.data.find(b" ", pos)])
        # not a ref line (damaged, or written by something else): no value
        return sha.decode("ascii") if _SHA_RE.fullmatch(sha) else None

    def _scan(self, lo: int | None = None, hi: int | None = None) -> dict[str, str]:
        chunk = bytes(self.data[self.start if lo is None else lo : hi])
        return {
            name.decode("utf-8", "surrogateescape"): sha.decode("ascii")
            for sha, name in _RECORDS_RE.findall(chunk if chunk.endswith(b"\n") else chunk + b"\n")
        }

    def under(self, prefix: str) -> dict[str, str]:
        """Every ref whose name starts with ``prefix``: name -> sha."""
        if not self.sorted:
            return {k: v for k, v in self._scan().items() if k.startswith(prefix)}
        key = prefix.encode("utf-8", "surrogateescape")
        lo = self._lower_bound(key)
        hi = self._lower_bound(key + b"\xff")
        return self._scan(lo, hi) if lo < hi else {}

    def names(self) -> dict[str, str]:
        return self._scan()

    def remote_copies(self, run_id: str, remotes_prefix: str) -> dict[str, str]:
        """``<remotes_prefix><remote>/runs/<run_id>`` for every remote: one binary search per
        remote that has packed runs, skipping over each remote's runs."""
        if not self.sorted:
            return {
                k: v
                for k, v in self.under(remotes_prefix).items()
                if k.rpartition("/runs/")[2] == run_id and k.rpartition("/runs/")[0]
            }
        base = remotes_prefix.encode("utf-8", "surrogateescape")
        out: dict[str, str] = {}
        pos = self._lower_bound(base)
        while pos < len(self.data):
            _start, end, name = self._record_at(pos)
            if not name.startswith(base):
                break
            remote, sep, _rest = name[len(base) :].rpartition(b"/runs/")
            if not sep or not remote:
                pos = end
                continue
            folder = base + remote + b"/runs/"
            ref = (folder + run_id.encode()).decode("utf-8", "surrogateescape")
            sha = self.get(ref)
            if sha is not None:
                out[ref] = sha
            pos = max(self._lower_bound(folder + b"\xff"), end)
        return out

    def beside_runs(self, remotes_prefix: str, keep: Callable[[str], bool]) -> dict[str, str]:
        """The refs under ``remotes_prefix`` that ``keep`` accepts, leaving out every remote's
        ``runs/`` folder in one jump each (format-1 copies: maybe 100k of them)."""
        if not self.sorted:
            return {k: v for k, v in self.under(remotes_prefix).items() if keep(k)}
        base = remotes_prefix.encode("utf-8", "surrogateescape")
        out: dict[str, str] = {}
        pos = self._lower_bound(base)
        while pos < len(self.data):
            _start, end, name = self._record_at(pos)
            if not name.startswith(base):
                break
            remote, sep, _rest = name[len(base) :].rpartition(b"/runs/")
            if sep and remote:
                pos = max(self._lower_bound(base + remote + b"/runs/\xff"), end)
                continue
            text = name.decode("utf-8", "surrogateescape")
            if keep(text):
                sha = self.get(text)
                if sha is not None:
                    out[text] = sha
            pos = end
        return out


def packed_refs(common_dir: Path) -> dict[str, str]:
    """Every ref in ``packed-refs``: name -> hex sha."""
    with PackedRefs(common_dir) as packed:
        return packed.names()


def packed_stamp(common_dir: Path) -> str:
    """Changes whenever packed-refs does: git and xp replace it by lock file + rename, so
    each version has a new inode (and, almost always, a new size and mtime)."""
    try:
        st = os.stat(common_dir / PACKED)
    except (FileNotFoundError, NotADirectoryError):
        return ""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


# -- loose refs -------------------------------------------------------------------------------


def _read_loose(path: str | Path) -> str | None:
    """The sha a loose ref file holds; None for a symbolic ref, garbage or no file."""
    try:
        with open(path, "rb") as fh:
            content = fh.read(100).strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None
    return content.decode("ascii") if _SHA_RE.fullmatch(content) else None


def loose_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """The loose ref files under ``prefix``: name -> hex sha."""
    refs: dict[str, str] = {}
    base = common_dir / prefix.rstrip("/")
    for dirpath, _dirs, files in os.walk(base):
        for fname in files:
            if fname.endswith(".lock"):
                continue
            path = os.path.join(dirpath, fname)
            sha = _read_loose(path)
            if sha is not None:
                name = os.path.relpath(path, common_dir).replace(os.sep, "/")
                refs[name] = sha
    return refs


def list_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """All refs under ``prefix`` (e.g. ``refs/xp/``): name -> hex sha; loose ones win."""
    with PackedRefs(common_dir) as packed:
        refs = packed.under(prefix)
    refs.update(loose_refs(common_dir, prefix))
    return refs


def read_ref(common_dir: Path, name: str) -> str | None:
    """The sha ``name`` points at: its loose file, else a binary search of packed-refs."""
    path = common_dir / name
    try:
        content = path.read_bytes().strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    else:
        if _SHA_RE.fullmatch(content):
            return content.decode("ascii")
    with PackedRefs(common_dir) as packed:
        return packed.get(name)


def _remote_run_folders(common_dir: Path, remotes_prefix: str) -> Iterator[str]:
    """``refs/xp/remotes/<remote>/runs`` folders (remote names may hold slashes), found
    without listing any runs folder itself."""
    stack = [remotes_prefix.rstrip("/")]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(common_dir / folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                sub = f"{folder}/{entry.name}"
                if entry.name == "runs":
                    yield sub
                else:
                    stack.append(sub)


def find_run(common_dir: Path, run_id: str) -> dict[str, str]:
    """Every ref holding run ``run_id``, local and fetched copies: name -> sha.

    A handful of file lookups and binary searches, whatever the number of runs.
    """
    runs_prefix, remotes_prefix = RUNS_PREFIX, REMOTES_PREFIX
    out: dict[str, str] = {}
    if not run_id or "/" in run_id or "\0" in run_id or run_id in (".", ".."):
        return out  # names no file under a runs folder
    with PackedRefs(common_dir) as packed:
        out.update(packed.remote_copies(run_id, remotes_prefix))
        local = runs_prefix + run_id
        sha = packed.get(local)
        if sha is not None:
            out[local] = sha
    for folder in _remote_run_folders(common_dir, remotes_prefix):
        sha = _read_loose(common_dir / folder / run_id)
        if sha is not None:
            out[f"{folder}/{run_id}"] = sha
    sha = _read_loose(common_dir / runs_prefix / run_id)
    if sha is not None:
        out[runs_prefix + run_id] = sha
    return out


def folder_stamp(common_dir: Path, folder: str) -> str | None:
    """(inode, mtime) of a folder of loose refs, or None when it is not there. Adding,
    removing or replacing (rename) a ref in it changes its mtime."""
    try:
        st = os.stat(common_dir / folder)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return f"{st.st_ino}:{st.st_mtime_ns}"


@dataclass
class FolderScan:
    """What one folder of loose refs holds, as ``scan_folder`` read it."""

    stamp: str | None  # taken before listing; None: the folder is gone
    racy: bool  # modified within RACY_SECONDS of the scan: do not trust the stamp next time
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (file id, sha)
    folders: list[str] = field(default_factory=list)  # sub-folders


def scan_folder(common_dir: Path, folder: str, known: Mapping[str, tuple[str, str]]) -> FolderScan:
    """The loose refs directly in ``folder``; a file whose id (inode, mtime, size) is in
    ``known`` is not read again. Lock files and symbolic refs are left out."""
    now = time.time()
    path = common_dir / folder
    try:
        st = os.stat(path)
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return FolderScan(None, False)
    if not stat.S_ISDIR(st.st_mode):
        return FolderScan(None, False)
    scan = FolderScan(f"{st.st_ino}:{st.st_mtime_ns}", st.st_mtime > now - RACY_SECONDS)
    if not known:
        _scan_new(path, folder, entries, scan, now)
        return scan
    for entry in entries:
        name = f"{folder}/{entry.name}"
        try:
            est = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we looked
        if stat.S_ISDIR(est.st_mode):
            scan.folders.append(name)
            continue
        if entry.name.endswith(".lock") or not stat.S_ISREG(est.st_mode):
            continue
        file_id = f"{est.st_ino}:{est.st_mtime_ns}:{est.st_size}"
        old = known.get(name)
        if old is not None and old[0] == file_id:
            scan.refs[name] = old
            continue
        sha = _read_loose(entry.path)
        if sha is not None:
            scan.refs[name] = (file_id, sha)
        if est.st_mtime > now - RACY_SECONDS:
            scan.racy = True  # the file itself may be rewritten within its mtime's tick
    return scan


def _scan_new(
    path: Path,
    folder: str,
    entries: list[os.DirEntry[str]],
    scan: FolderScan,
    now: float,
) -> None:
    """``scan_folder`` of a folder none of whose files is known (a first look at 100,000
    fetched refs): each file opened by name once, then stat-ed and read through its
    descriptor, half the cost of a stat by path then an open (0.5 s where it was 1 s)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO: no wait
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    except OSError:
        return
    try:
        for entry in entries:
            name = f"{folder}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    scan.folders.append(name)
                    continue
                if entry.name.endswith(".lock") or not entry.is_file(follow_symlinks=False):
                    continue
                fd = os.open(entry.name, flags, dir_fd=dir_fd)
            except OSError:
                continue  # removed while we looked, or replaced by a symlink
            try:
                est = os.fstat(fd)
                content = os.read(fd, 100).strip() if stat.S_ISREG(est.st_mode) else b""
            except OSError:
                continue
            finally:
                os.close(fd)
            if _SHA_RE.fullmatch(content):
                file_id = f"{est.st_ino}:{est.st_mtime_ns}:{est.st_size}"
                scan.refs[name] = (file_id, content.decode("ascii"))
            if est.st_mtime > now - RACY_SECONDS:
                scan.racy = True
    finally:
        os.close(dir_fd)


# -- writing ----------------------------------------------------------------------------------


def _take_lock(path: Path, wait: float = _LOCK_RETRY_SECONDS) -> int:
    """git's lock: ``<path>.lock`` created with O_EXCL; retried for ``wait`` seconds."""
    deadline = time.monotonic() + wait
    lock = str(path) + ".lock"
    while True:
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if time.monotonic() > deadline:
                raise StorageError(
                    f"{lock} is held by another process; if no git or xp process is running,"
                    " remove that file"
                ) from None
            time.sleep(0.005)
        except FileNotFoundError:
            # `git pack-refs` removes folders its pruning left empty; make ours again
            if time.monotonic() > deadline:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)


def create_ref(common_dir: Path, name: str, sha: str) -> None:
    """Create ``name`` pointing at ``sha``; RefExistsError if it already exists."""
    path = common_dir / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(path)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot create ref {name}: {exc.strerror}; check disk space") from None
    lock = str(path) + ".lock"
    try:
        if path.exists():
            raise RefExistsError(f"{name} exists already; pick another run id")
        with PackedRefs(common_dir) as packed:
            if packed.get(name) is not None:
                raise RefExistsError(f"{name} exists already; pick another run id")
        os.write(fd, sha.encode("ascii") + b"\n")
        os.close(fd)
        fd = -1
        os.replace(lock, path)
        lock = ""
    except OSError as exc:
        raise StorageError(f"cannot write ref {name}: {exc.strerror}; free disk space") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if lock:
            os.unlink(lock)


def update_ref(common_dir: Path, name: str, new: str, expected: str | None) -> None:
    """Point ``name`` at ``new`` if it is still at ``expected`` (None: absent); compare-and-swap
    under git's lock, RefChangedError when another writer moved it first.

    A ref that is only in ``packed-refs`` is overridden by the loose file, as git does."""
    path = common_dir / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(path)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot update ref {name}: {exc.strerror}; check disk space") from None
    lock = str(path) + ".lock"
    try:
        current = read_ref(common_dir, name)
        if current != expected:
            raise RefChangedError(
                f"{name} is at {current or 'nothing'}, not {expected or 'nothing'}: another"
                " writer moved it; read it again and retry"
            )
        os.write(fd, new.encode("ascii") + b"\n")
        os.close(fd)
        fd = -1
        os.replace(lock, path)
        lock = ""
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot write ref {name}: {exc.strerror}; free disk space") from None
    finally:
        if fd >= 0:
            os.close(fd)
        if lock:
            os.unlink(lock)


def _packed_records(data: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """(header line, refname -> its lines (with any peeled line)) of a packed-refs file."""
    header = b""
    if data.startswith(b"#"):
        end = data.find(b"\n") + 1 or len(data)
        header, data = data[:end], data[end:]
    records: dict[bytes, bytes] = {}
    name = b""
    for line in data.splitlines(keepends=True):
        if line.startswith(b"^") and name:
            records[name] += line
            continue
        _sha, _, rest = line.rstrip(b"\n").partition(b" ")
        name = rest
        if name:
            records[name] = line if line.endswith(b"\n") else line + b"\n"
    return header, records


def _write_packed(common_dir: Path, fd: int, header: bytes, records: dict[bytes, bytes]) -> str:
    """Write the locked packed-refs, sorted, fsynced; returns the stamp the file will have."""
    body = header + b"".join(records[k] for k in sorted(records))
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)
    st = os.fstat(fd)  # a rename keeps inode, size and mtime
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def delete_refs(common_dir: Path, expected: dict[str, str]) -> None:
    """Delete each ref ``name`` if it still points at ``expected[name]``; all or none.

    git's protocol: every ref's lock, then packed-refs' lock, held until the loose files are
    gone too, so neither a concurrent writer nor a concurrent packer (``git gc``, xp's own
    ``pack_refs``) can bring a deleted ref back.
    """
    held: list[tuple[int, str]] = []
    try:
        for name in sorted(expected):
            path = common_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            held.append((_take_lock(path), str(path) + ".lock"))
        packed_path = common_dir / PACKED
        held.append((_take_lock(packed_path), str(packed_path) + ".lock"))
        for name, sha in expected.items():
            current = read_ref(common_dir, name)
            if current != sha:
                raise RefChangedError(
                    f"{name} is at {current or 'nothing'}, not {sha[:12]}: it changed meanwhile;"
                    " look again and retry"
                )
        try:
            data = packed_path.read_bytes()
        except FileNotFoundError:
            data = b""
        header, records = _packed_records(data)
        names = {n.encode("utf-8", "surrogateescape") for n in expected}
        if names & records.keys():
            for key in names:
                records.pop(key, None)
            fd = held[-1][0]
            _write_packed(common_dir, fd, header, records)
            os.replace(held[-1][1], packed_path)
            os.close(fd)
            held.pop()
        for name in expected:
            with contextlib.suppress(FileNotFoundError):
                (common_dir / name).unlink()
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot delete refs: {exc.strerror}; check permissions") from None
    finally:
        for fd, lock in reversed(held):
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
        for name in expected:
            _prune_empty_dirs(common_dir, name)


def _prune_empty_dirs(common_dir: Path, name: str) -> None:
    """Remove folders a deleted ref leaves empty, up to (not including) ``refs/``."""
    parent = (common_dir / name).parent
    top = common_dir / "refs"
    while parent != top and top in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def delete_ref(common_dir: Path, name: str, expected_sha: str) -> None:
    """Compare-and-swap delete of one ref, loose or packed."""
    delete_refs(common_dir, {name: expected_sha})


@dataclass(frozen=True)
class Packed:
    """What ``pack_refs`` did: the refs now in packed-refs, and its stamps before and after."""

    moved: dict[str, str]  # name -> sha written to packed-refs
    pruned: list[str]  # loose files removed (the rest stay: they changed meanwhile, or were busy)
    before: str  # packed_stamp of the file that was read under the lock
    after: str  # packed_stamp of the file written


def pack_refs(repo: GitRepo, names: Iterable[str]) -> Packed | None:
    """Move the loose refs ``names`` (under refs/xp/) into packed-refs, as git pack-refs does.

    Cheap and safe or not at all: None when packed-refs is locked (another git or xp packs
    or deletes), when git did not write it sorted, or when the disk refuses. Only refs to
    commits move (a commit needs no peeled line); each loose file is removed under its own
    lock, and only while it still holds the value packed.
    """
    from xp.gitstore.catfile import object_types

    common = repo.common_dir
    packed_path = common / PACKED
    try:
        fd = _take_lock(packed_path, wait=0)
    except (StorageError, OSError):
        return None
    lock = str(packed_path) + ".lock"
    committed = False
    try:
        before = packed_stamp(common)
        try:
            data = packed_path.read_bytes()
        except FileNotFoundError:
            data = b""
        header, records = _packed_records(data)
        if data and not (header.startswith(b"# pack-refs with:") and b" sorted " in header + b" "):
            return None
        if not header:
            header = b"# pack-refs with: peeled fully-peeled sorted \n"
        loose: dict[str, str] = {}
        for name in names:  # read again under the lock: a deleted ref must not come back
            if not name.startswith("refs/xp/"):
                continue
            sha = _read_loose(common / name)
            if sha is not None:
                loose[name] = sha
        types = object_types(repo, sorted(set(loose.values())))
        moved = {n: s for n, s in loose.items() if types.get(s) == "commit"}
        if not moved:
            return None
        for name, sha in moved.items():
            records[name.encode("utf-8", "surrogateescape")] = f"{sha} {name}\n".encode(
                "utf-8", "surrogateescape"
            )
        after = _write_packed(common, fd, header, records)
        os.close(fd)
        fd = -1
        os.replace(lock, packed_path)
        committed = True
        _fsync_dir(common)
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
        if not committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    pruned = []
    for name, sha in moved.items():
        path = common / name
        try:
            ref_fd = _take_lock(path, wait=0)
        except (StorageError, OSError):
            continue  # someone is changing it: the loose file stays and wins
        try:
            if _read_loose(path) == sha:
                path.unlink()
                pruned.append(name)
        except OSError:
            pass
        finally:
            os.close(ref_fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(path) + ".lock")
    return Packed(moved, pruned, before, after)


def valid_branch_name(repo: GitRepo, name: str) -> bool:
    return repo.git("check-ref-format", "--branch", name, check=False).returncode == 0


def create_branch(repo: GitRepo, name: str, commit: str) -> None:
    """A new branch ``name`` at ``commit``; RefExistsError when it exists."""
    if read_ref(repo.common_dir, f"refs/heads/{name}") is not None:
        raise RefExistsError(
            f"branch {name!r} exists already; pick another name or delete it first"
        )
    repo.git("branch", name, commit)
