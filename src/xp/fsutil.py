"""Files, written so that a crash or a full disk leaves the old file or the new one, never
half of either; and placed by the first of reflink, hard link or copy that works.

``atomic_write`` is how xp writes every file a user owns or reads back (params files, the
config, hooks, cache objects): a temp file in the same folder, fsync, rename over the old
name, fsync of the folder. ``place`` is the one ladder that puts a file elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
from pathlib import Path

from xp.errors import StorageError

LINK_KINDS = ("reflink", "hardlink", "copy")
_FICLONE = 0x40049409  # linux/fs.h: share blocks (btrfs, XFS, bcachefs; not ext4)


def temp_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` for a file about to replace it."""
    return path.with_name(f".{path.name}.xp-{secrets.token_hex(4)}.tmp")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` all at once (temp + fsync + rename); StorageError when
    the disk refuses, and then the old file is as it was."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)  # the umask may have taken bits away
        else:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)  # keep the old file's mode
        os.replace(tmp, path)
        tmp = Path()
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StorageError(
            f"cannot write {path}: {exc.strerror}; free disk space or fix permissions"
        ) from None
    finally:
        if tmp != Path():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def reflink(src: Path | str, dst: Path | str) -> bool:
    """Clone ``src`` to the new file ``dst`` sharing its blocks; False where unsupported."""
    if sys.platform == "darwin":
        return _clonefile(src, dst)
    if not sys.platform.startswith("linux"):
        return False
    import fcntl

    with open(src, "rb") as fin, open(dst, "xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return True
        except OSError:
            pass
    os.unlink(dst)
    return False


def _clonefile(src: Path | str, dst: Path | str) -> bool:  # pragma: no cover - macOS only
    import ctypes

    try:
        libc = ctypes.CDLL("libc.dylib", use_errno=True)
        return bool(libc.clonefile(os.fsencode(src), os.fsencode(dst), 0) == 0)
    except (OSError, AttributeError):
        return False


def place(src: Path, dest: Path, kinds: tuple[str, ...] = LINK_KINDS, *, writable: bool) -> str:
    """Put the file ``src`` at ``dest`` by the first of ``kinds`` that works; returns it.

    The file appears under a temp name and is renamed over ``dest``, so a crash leaves the
    old file or the new one. Reflinks and copies are their own files (made writable when
    ``writable``); a hard link shares the inode, so writing through it changes ``src``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        for kind in kinds:
            if kind == "reflink" and reflink(src, tmp):
                pass
            elif kind == "hardlink":
                try:
                    os.link(src, tmp)
                except OSError:
                    continue
            elif kind == "copy":
                shutil.copyfile(src, tmp)
            else:
                continue
            if writable and kind != "hardlink":
                os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
            return kind
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    raise StorageError(
        f"cannot put {dest}: none of the link kinds {', '.join(kinds)} works here;"
        " add 'copy' to the link setting"
    )
