"""Refs under refs/xp/, read and written with git's own lock-file protocol.

Creating a ref is compare-and-swap against "absent": take ``<ref>.lock`` with O_EXCL (git's
lock), check neither a loose nor a packed ref exists, then rename the lock into place. Git,
dulwich and ``git pack-refs`` honour the same lock, so concurrent writers never clobber.
We avoid dulwich's refs container here because it validates all of packed-refs on first use
(~1 s at 100k runs).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from xp.errors import RefExistsError, StorageError

_LOCK_RETRY_SECONDS = 5.0


def _packed_refs(common_dir: Path) -> dict[str, str]:
    try:
        data = (common_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return {}
    refs: dict[str, str] = {}
    for line in data.split(b"\n"):
        if not line or line[:1] in (b"#", b"^"):
            continue
        sha, _, name = line.partition(b" ")
        refs[name.decode("utf-8", "surrogateescape")] = sha.decode("ascii")
    return refs


def _in_packed(common_dir: Path, name: str) -> bool:
    try:
        data = (common_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return False
    needle = b" " + name.encode() + b"\n"
    return needle in data or data.endswith(needle[:-1])


def list_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """All refs under ``prefix`` (e.g. ``refs/xp/``): name -> hex sha; loose ones win."""
    refs = {k: v for k, v in _packed_refs(common_dir).items() if k.startswith(prefix)}
    base = common_dir / prefix.rstrip("/")
    for dirpath, _dirs, files in os.walk(base):
        for fname in files:
            if fname.endswith(".lock"):
                continue
            path = os.path.join(dirpath, fname)
            try:
                with open(path, "rb") as fh:
                    content = fh.read(100).strip()
            except OSError:
                continue  # deleted or packed while we looked
            if len(content) == 40:
                name = os.path.relpath(path, common_dir).replace(os.sep, "/")
                refs[name] = content.decode("ascii")
    return refs


def read_ref(common_dir: Path, name: str) -> str | None:
    try:
        content = (common_dir / name).read_bytes().strip()
        if len(content) == 40:
            return content.decode("ascii")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    return _packed_refs(common_dir).get(name)


def _take_lock(path: Path) -> int:
    deadline = time.monotonic() + _LOCK_RETRY_SECONDS
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


def create_ref(common_dir: Path, name: str, sha: str) -> None:
    """Create ``name`` pointing at ``sha``; RefExistsError if it already exists."""
    path = common_dir / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _take_lock(path)
    except OSError as exc:
        raise StorageError(f"cannot create ref {name}: {exc.strerror}; check disk space") from None
    lock = str(path) + ".lock"
    try:
        if path.exists() or _in_packed(common_dir, name):
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
