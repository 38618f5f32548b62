"""Files, written so that a crash or a full disk leaves the old file or the new one, never
half of either; placed by the first of reflink, copy (or, opted into, hard link) that works;
and never written through a symlink that leads out of the folder they belong to.

``atomic_write`` is how xp writes every file a user owns or reads back (params files, the
config, hooks, cache markers): a temp file in the same folder, fsync, rename over the old
name, fsync of the folder. ``place`` is the one ladder that puts a file elsewhere, the same
way. Both reach the destination's folder through ``open_dir``, which walks it one component
at a time with ``O_NOFOLLOW`` from a root the caller names (the work tree, ``-o DIR``): a
symlink on the way is followed only when it stays inside that root, so a run record that
makes ``outputs -> /etc`` cannot make xp write to ``/etc``. The final name is replaced by
``rename``, which replaces a symlink there instead of writing through it.

``private_tmp`` is a process's own temporary folder under ``<git dir>/xp/tmp/``, held by an
``flock`` for the process's life, so ``clean_stale_tmp`` can remove what killed processes
left behind and nothing else.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xp.errors import CorruptObjectError, StorageError, UnsafePathError

LINK_KINDS = ("reflink", "hardlink", "copy")  # every kind the ladder knows
SAFE_KINDS = ("reflink", "copy")  # the default: never an inode shared with the cache
_FICLONE = 0x40049409  # linux/fs.h: share blocks (btrfs, XFS, bcachefs; not ext4)
_CHUNK = 1 << 20
_MAX_LINKS = 40  # symlinks followed on one walk, as the kernel's own limit


def _temp(name: str) -> str:
    """``.<name>.xp-<pid>-<random>.tmp``: the pid says whose it is (``_drop_stale_temps``)."""
    return f".{name[:200]}.xp-{os.getpid()}-{os.urandom(4).hex()}.tmp"


def temp_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` for a file about to replace it (carrying this
    process's pid, so a dead writer's leftover is removed by the next write there)."""
    return path.with_name(_temp(path.name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive
    return True


_swept: set[tuple[int, int, int]] = set()  # (pid, dev, inode) of folders swept already


def _drop_stale_temps(dfd: int) -> None:
    """Remove the temp files killed writers left in this folder (``.<name>.xp-<pid>-...``
    whose pid is gone), so a SIGKILL in the middle of a write leaves no litter for long.
    Once per folder and process: ``xp get`` of 10,000 files lists the folder once."""
    st = os.fstat(dfd)
    key = (os.getpid(), st.st_dev, st.st_ino)
    if key in _swept:
        return
    _swept.add(key)
    try:
        names = os.listdir(dfd)
    except OSError:
        return
    for entry in names:
        if not (entry.startswith(".") and entry.endswith(".tmp") and ".xp-" in entry):
            continue
        pid = entry.rsplit(".xp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(entry, dir_fd=dfd)


def wait_unlocked(path: Path) -> None:
    """Return once no process holds an exclusive ``flock`` on ``path`` (at once when there is
    no such file): how tests and benchmarks wait for xp's detached background work."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def fsync_dir(folder: Path | int) -> None:
    """fsync a folder (a path or an open descriptor) so the names just made in it survive a
    crash; quietly nothing where the file system does not let a folder be opened or synced
    (as git does)."""
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = folder if isinstance(folder, int) else os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            if not isinstance(folder, int):
                os.close(fd)


def sync_filesystem(folder: Path) -> None:
    """Make everything written to ``folder``'s file system durable: one ``syncfs`` where
    an ``fsync`` per file and per new folder costs seconds for a thousand files (a folder
    artifact store after a push's upload); ``os.sync`` where the C library has no syncfs.
    Raises OSError when the call fails (an I/O error)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        syncfs = _syncfs()
        if syncfs is None:
            os.sync()
        elif syncfs(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(folder))
    finally:
        os.close(fd)


_SYNCFS: list[Any] = []


def _syncfs() -> Any:
    """The C library's ``syncfs`` (Linux), or None."""
    if not _SYNCFS:
        fn = None
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                fn = ctypes.CDLL(None, use_errno=True).syncfs
                fn.argtypes = [ctypes.c_int]
                fn.restype = ctypes.c_int
        _SYNCFS.append(fn)
    return _SYNCFS[0]


# -- walking to a folder without following symlinks out -----------------------------------


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts or rel.startswith("/"):
        raise UnsafePathError(f"refusing the path {rel!r}: it must stay inside its folder")
    if any(p.lower().rstrip(". ") == ".git" for p in parts):
        raise UnsafePathError(f"refusing the path {rel!r}: xp never writes into a .git folder")
    return parts


def open_dir(root: Path, rel: str, *, create: bool = True, _depth: int = 0) -> int:
    """An fd of the folder ``root/rel``, made when missing (``create``).

    Each component is opened with ``O_NOFOLLOW`` relative to the one before. A symlink on the
    way is followed only when its target is a folder inside ``root``; anything else raises
    UnsafePathError naming the link. ``root`` itself may be reached through symlinks.
    """
    top = os.path.realpath(root)
    if create:
        os.makedirs(top, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    here = top
    try:
        for part in _parts(rel):
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                nfd = _follow_inside(top, here, part, fd, _depth)
            os.close(fd)
            fd = nfd
            here = os.path.join(here, part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _follow_inside(top: str, here: str, part: str, fd: int, depth: int) -> int:
    """The folder a symlink component leads to, if it is one inside ``top``."""
    where = os.path.join(here, part)
    if not stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
        raise StorageError(f"{where} is a file where a folder must be; move it away")
    target = os.path.realpath(where)
    inside = target == top or target.startswith(top.rstrip("/") + "/")
    if not inside or depth >= _MAX_LINKS or not os.path.isdir(target):
        raise UnsafePathError(
            f"refusing to write through {where}: it is a symlink to {target}, outside {top}"
            if not inside
            else f"refusing to write through the symlink {where}: it leads to no folder"
        )
    return open_dir(Path(top), os.path.relpath(target, top), create=False, _depth=depth + 1)


def _split(dest: Path, root: Path | None) -> tuple[Path, str]:
    """(root, the destination's folder relative to it)."""
    if root is None:
        return dest.parent, ""
    rel = os.path.relpath(os.path.abspath(dest.parent), os.path.abspath(root))
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        raise UnsafePathError(f"refusing to write {dest}: it is outside {root}")
    return root, rel


def check_inside(root: Path, rel: str) -> None:
    """Raise UnsafePathError if writing ``root/rel`` would go through a symlink out of
    ``root`` (or ``rel`` is not a clean relative path); writes nothing, makes no folder."""
    parts = _parts(rel)
    folder = "/".join(parts[:-1])
    try:
        os.close(open_dir(root, folder, create=False))
    except FileNotFoundError:
        pass  # nothing there yet: nothing to go through (place makes real folders)
    except NotADirectoryError:
        pass  # a file where a folder must be: writing fails later with its own message


# -- writing -------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def atomic_write(
    path: Path, data: bytes | str, *, mode: int | None = None, root: Path | None = None
) -> None:
    """Replace ``path`` with ``data`` all at once (temp + fsync + rename); StorageError when
    the disk refuses, and then the old file is as it was. With ``root``, the folders from
    ``root`` down are walked without following symlinks out of it."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    top, rel = _split(path, root)
    tmp = _temp(path.name)
    dfd = -1
    made = False
    try:
        dfd = open_dir(top, rel)
        _drop_stale_temps(dfd)
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666 if mode is None else mode,
            dir_fd=dfd,
        )
        made = True
        try:
            _write_all(fd, payload)
            os.fsync(fd)
            if mode is not None:
                os.fchmod(fd, mode)  # the umask may have taken bits away
            else:
                with contextlib.suppress(FileNotFoundError):  # keep the old file's mode
                    old = os.stat(path.name, dir_fd=dfd, follow_symlinks=False)
                    if stat.S_ISREG(old.st_mode):
                        os.fchmod(fd, old.st_mode & 0o7777)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        made = False
        fsync_dir(dfd)
    except UnsafePathError:
        raise
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(
            f"cannot write {path}: {exc.strerror}; free disk space or fix permissions"
        ) from None
    finally:
        if dfd >= 0:
            if made:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
            os.close(dfd)


def reflink(src: Path | str, dst: Path | str) -> bool:
    """Clone ``src`` to the new file ``dst`` sharing its blocks; False where unsupported."""
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        return _clonefile(src, dst)
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return False
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        if _ficlone(fin.fileno(), fout.fileno()):
            return True
    os.unlink(dst)
    return False


def _ficlone(src_fd: int, dst_fd: int) -> bool:
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return False
    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError:
        return False
    return True


def _clonefile(src: Path | str, dst: Path | str) -> bool:  # pragma: no cover - macOS only
    import ctypes

    try:
        libc = ctypes.CDLL("libc.dylib", use_errno=True)
        return bool(libc.clonefile(os.fsencode(src), os.fsencode(dst), 0) == 0)
    except (OSError, AttributeError):
        return False


def _hash_fd(fd: int) -> str:
    import hashlib  # OpenSSL's load is 2-3 ms of a command that hashes nothing

    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, _CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _copy_fd(src_fd: int, dst_fd: int, hashing: bool) -> str | None:
    import hashlib

    h = hashlib.sha256() if hashing else None
    while chunk := os.read(src_fd, _CHUNK):
        if h is not None:
            h.update(chunk)
        _write_all(dst_fd, chunk)
    return h.hexdigest() if h is not None else None


def place(
    src: Path,
    dest: Path,
    kinds: tuple[str, ...] = SAFE_KINDS,
    *,
    writable: bool,
    root: Path | None = None,
    sha256: str | None = None,
) -> str:
    """Put the file ``src`` at ``dest`` by the first of ``kinds`` that works; returns it.

    The file appears under a temp name, is fsynced and renamed over ``dest``, so a crash
    leaves the old file or the new one. Reflinks and copies are files of their own (writable
    when ``writable``, else read-only); a hard link shares the inode with ``src``, so writing
    through it changes ``src``: it is an opt-in, never a default. With ``sha256`` the bytes
    placed are hashed (a copy while it is made) and a mismatch raises CorruptObjectError
    before anything is renamed. With ``root``, the folders are walked as ``open_dir`` does.
    """
    top, rel = _split(dest, root)
    dfd = open_dir(top, rel)
    tmp = _temp(dest.name)
    try:
        _drop_stale_temps(dfd)
        for kind in kinds:
            got = _make(src, tmp, dfd, kind, sha256 is not None, writable)
            if got is False:
                continue
            if sha256 is not None and got != sha256:
                raise CorruptObjectError(
                    f"{src} is corrupt (its bytes hash to {str(got)[:12]}, not {sha256[:12]});"
                    " delete it and fetch or log it again"
                )
            os.replace(tmp, dest.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            fsync_dir(dfd)
            return kind
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        os.close(dfd)
    raise StorageError(
        f"cannot put {dest}: none of the link kinds {', '.join(kinds)} works here;"
        " add 'copy' to the link setting"
    )


def _make(
    src: Path, tmp: str, dfd: int, kind: str, hashing: bool, writable: bool
) -> str | bool | None:
    """Make ``tmp`` in folder ``dfd`` as ``kind`` of ``src``: False if that kind cannot be
    made here, else the sha256 of what was made (when ``hashing``) or None."""
    if kind == "hardlink":
        try:
            os.link(src, tmp, dst_dir_fd=dfd)
        except OSError:
            return False
        if not hashing:
            return None
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            return _hash_fd(fd)
        finally:
            os.close(fd)
    if kind not in ("reflink", "copy"):
        return False
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = os.open(
            tmp,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666,
            dir_fd=dfd,
        )
        try:
            if kind == "reflink":
                if not _ficlone(sfd, out):
                    os.close(out)
                    out = -1
                    os.unlink(tmp, dir_fd=dfd)
                    return False
                digest = _hash_fd(out) if hashing else None  # the clone is ours: stable
            else:
                digest = _copy_fd(sfd, out, hashing)
            if not writable:
                os.fchmod(out, 0o444)
            os.fsync(out)
            return digest
        finally:
            if out >= 0:
                os.close(out)
    finally:
        os.close(sfd)


def move_into(src: Path, dest: Path, *, root: Path) -> None:
    """Rename the finished file ``src`` to ``dest`` below ``root``, walking the folders as
    ``open_dir`` does; across file systems, a verified copy then the rename."""
    top, rel = _split(dest, root)
    dfd = open_dir(top, rel)
    try:
        try:
            os.replace(src, dest.name, dst_dir_fd=dfd)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            place(src, dest, ("copy",), writable=True, root=root)
            os.unlink(src)
        fsync_dir(dfd)
    finally:
        os.close(dfd)


# -- a process's own temporary folder ------------------------------------------------------

OWNER_SUFFIX = ".owner"
_owned: dict[tuple[int, str], tuple[Path, int]] = {}


def private_tmp(xp_dir: Path) -> Path:
    """This process's own folder under ``<xp dir>/tmp/``: ``<pid>-<random>/``, beside
    ``<pid>-<random>.owner`` on which the process holds an ``flock`` until it exits.

    The lock file is made, locked and only then renamed into place, so a lock file that
    can be locked by someone else is one whose process is gone (``clean_stale_tmp``).
    """
    key = (os.getpid(), str(xp_dir))
    hit = _owned.get(key)
    if hit is not None and hit[0].is_dir():
        return hit[0]
    root = xp_dir / "tmp"
    name = f"{os.getpid()}-{os.urandom(4).hex()}"  # secrets' source, not its import
    try:
        root.mkdir(parents=True, exist_ok=True)
        pending = root / f".{name}{OWNER_SUFFIX}.new"
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        folder = root / name
        folder.mkdir()
        os.replace(pending, root / f"{name}{OWNER_SUFFIX}")
    except OSError as exc:
        raise StorageError(f"cannot write {root}: {exc.strerror}; free disk space") from None
    if not _owned:
        atexit.register(_remove_own)
    _owned[key] = (folder, fd)
    return folder


def _remove_own() -> None:
    """At a normal exit, this process's temporary folders go (a killed process's are
    removed by the next command, ``stale_tmp``)."""
    for (pid, _), (folder, fd) in list(_owned.items()):
        if pid != os.getpid():
            continue  # a forked child exiting: the folders are its parent's
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.with_name(folder.name + OWNER_SUFFIX).unlink()
        with contextlib.suppress(OSError):
            os.close(fd)


def owner_fds() -> list[int]:
    """The lock fds of this process's temporary folders: a helper process that must keep
    them owned after this one dies (``xp run``'s guard) inherits these."""
    pid = os.getpid()
    return [fd for (p, _), (_, fd) in _owned.items() if p == pid]


@dataclass
class StaleTmp:
    """A temporary folder whose owner process is gone; ``lock_fd`` holds its lock."""

    folder: Path
    lock_fd: int

    def remove(self) -> None:
        """Delete the folder's remains, then its lock file."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.folder.with_name(self.folder.name + OWNER_SUFFIX).unlink()
        self.close()

    def close(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def stale_tmp(xp_dir: Path) -> list[StaleTmp]:
    """Folders under ``<xp dir>/tmp/`` whose owner process is gone, each with its lock held
    (so two cleaners never work on one folder); ``remove()`` or ``close()`` each."""
    root = xp_dir / "tmp"
    try:
        names = sorted(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        if not name.endswith(OWNER_SUFFIX) or name.startswith("."):
            continue
        try:
            fd = os.open(root / name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # its process lives
            continue
        out.append(StaleTmp(root / name[: -len(OWNER_SUFFIX)], fd))
    return out
