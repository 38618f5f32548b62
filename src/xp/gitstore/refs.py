"""Refs under refs/xp/, read and written with git's own lock-file protocol.

Creating a ref is compare-and-swap against "absent": take ``<ref>.lock`` with O_EXCL (git's
lock), check neither a loose nor a packed ref exists, then rename the lock into place. Git,
dulwich and ``git pack-refs`` honour the same lock, so concurrent writers never clobber.
We avoid dulwich's refs container here because it validates all of packed-refs on first use
(~1 s at 100k runs).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from xp.errors import RefChangedError, RefExistsError, StorageError
from xp.gitstore.repo import GitRepo

_LOCK_RETRY_SECONDS = 5.0


def packed_refs(common_dir: Path) -> dict[str, str]:
    """Every ref in ``packed-refs``: name -> hex sha."""
    try:
        data = (common_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return {}
    refs: dict[str, str] = {}
    for line in data.split(b"\n"):
        if not line or line[:1] in (b"#", b"^"):
            continue
        sha, _, name = line.partition(b" ")
        if len(sha) != 40 or not name or not _is_hex(sha):
            continue  # not a ref line (damaged, or written by something else): skip it
        refs[name.decode("utf-8", "surrogateescape")] = sha.decode("ascii")
    return refs


_HEX = frozenset(b"0123456789abcdef")


def _is_hex(data: bytes) -> bool:
    return _HEX.issuperset(data)


def _in_packed(common_dir: Path, name: str) -> bool:
    try:
        data = (common_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return False
    needle = b" " + name.encode() + b"\n"
    return needle in data or data.endswith(needle[:-1])


def loose_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """The loose ref files under ``prefix``: name -> hex sha."""
    refs: dict[str, str] = {}
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
            if len(content) == 40 and _is_hex(content):
                name = os.path.relpath(path, common_dir).replace(os.sep, "/")
                refs[name] = content.decode("ascii")
    return refs


def list_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """All refs under ``prefix`` (e.g. ``refs/xp/``): name -> hex sha; loose ones win."""
    refs = {k: v for k, v in packed_refs(common_dir).items() if k.startswith(prefix)}
    refs.update(loose_refs(common_dir, prefix))
    return refs


def read_ref(common_dir: Path, name: str) -> str | None:
    try:
        content = (common_dir / name).read_bytes().strip()
        if len(content) == 40 and _is_hex(content):
            return content.decode("ascii")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    return packed_refs(common_dir).get(name)


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


def _remove_from_packed(common_dir: Path, names: set[str]) -> None:
    """Rewrite packed-refs without ``names`` (and their peeled lines), under git's lock."""
    path = common_dir / "packed-refs"
    fd = _take_lock(path)
    lock = str(path) + ".lock"
    try:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        out: list[bytes] = []
        dropping = False
        for line in data.splitlines(keepends=True):
            if line.startswith(b"^"):
                if not dropping:
                    out.append(line)
                continue
            _sha, _, name = line.rstrip(b"\n").partition(b" ")
            dropping = not line.startswith(b"#") and name.decode("utf-8", "replace") in names
            if not dropping:
                out.append(line)
        os.write(fd, b"".join(out))
        os.close(fd)
        fd = -1
        os.replace(lock, path)
        lock = ""
    finally:
        if fd >= 0:
            os.close(fd)
        if lock:
            os.unlink(lock)


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


def delete_refs(common_dir: Path, expected: dict[str, str]) -> None:
    """Delete each ref ``name`` if it still points at ``expected[name]``; all or none.

    Takes every ref's lock first, checks all values, then drops them from packed-refs and
    the loose files: the lock-file protocol git uses, so a concurrent writer is never lost.
    """
    held: list[tuple[int, str]] = []
    try:
        for name in sorted(expected):
            path = common_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            held.append((_take_lock(path), str(path) + ".lock"))
        packed = packed_refs(common_dir)
        for name, sha in expected.items():
            current = read_ref(common_dir, name)
            if current != sha:
                raise RefChangedError(
                    f"{name} is at {current or 'nothing'}, not {sha[:12]}: it changed meanwhile;"
                    " look again and retry"
                )
        in_packed = {n for n in expected if n in packed}
        if in_packed:
            _remove_from_packed(common_dir, in_packed)
        for name in expected:
            with contextlib.suppress(FileNotFoundError):
                (common_dir / name).unlink()
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot delete refs: {exc.strerror}; check permissions") from None
    finally:
        for fd, lock in held:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
        for name in expected:
            _prune_empty_dirs(common_dir, name)


def delete_ref(common_dir: Path, name: str, expected_sha: str) -> None:
    """Compare-and-swap delete of one ref, loose or packed."""
    delete_refs(common_dir, {name: expected_sha})


def valid_branch_name(repo: GitRepo, name: str) -> bool:
    return repo.git("check-ref-format", "--branch", name, check=False).returncode == 0


def create_branch(repo: GitRepo, name: str, commit: str) -> None:
    """A new branch ``name`` at ``commit``; RefExistsError when it exists."""
    if read_ref(repo.common_dir, f"refs/heads/{name}") is not None:
        raise RefExistsError(
            f"branch {name!r} exists already; pick another name or delete it first"
        )
    repo.git("branch", name, commit)
