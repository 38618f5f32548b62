"""Write git objects as loose files, the way git itself does (temp file, then link).

dulwich serialises the objects; we write them ourselves because dulwich's object store
costs a Repo open and re-writes packed objects, and a run commit must stay in milliseconds.

A new object is unreachable until the run's ref is written: a ``git prune --expire=now``
that decided what is reachable before that deletes it (git documents the race; for xp's
answer see ``xp.gitstore.protect``). Its temp files (``tmp_obj_*``) go too: writes retry.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import stat
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from xp.errors import StorageError

if TYPE_CHECKING:
    from dulwich.object_store import DiskObjectStore
    from dulwich.objects import ShaFile


class Streamed(Protocol):
    """Content too big to hold in memory: ``size`` bytes, read (again) by ``chunks()``."""

    @property
    def size(self) -> int: ...

    def chunks(self) -> Iterator[bytes]: ...


try:  # CPython's own SHA-1: a few small objects need not load OpenSSL (2-3 ms, `xp tag`)
    from _sha1 import sha1 as _sha1  # type: ignore[import-not-found]
except ImportError:  # a Python built without it
    from hashlib import sha1 as _sha1


def sha1_hex(data: bytes) -> str:
    """SHA-1 of ``data`` in hex, without OpenSSL (``hashlib``) for small inputs."""
    return str(_sha1(data).hexdigest())


class GitObject(Protocol):
    """What the writer needs of an object: a dulwich ``ShaFile`` or a ``RawObject``."""

    @property
    def id(self) -> bytes: ...

    def as_legacy_object_chunks(self, compression_level: int = -1) -> Iterator[bytes]: ...


class RawObject:
    """An object from its type and body, serialised by the caller (``tree_body``,
    ``commit_body``): a run commit, a notes commit (``chains.write``) or a catalog bucket need
    no dulwich (its import is 4-8 ms of an ``xp tag`` or ``xp commit``)."""

    def __init__(self, kind: bytes, body: bytes) -> None:
        self.kind = kind
        self.body = body
        self._data = b"%s %d\x00%s" % (kind, len(body), body)
        self.id: bytes = _sha1(self._data).hexdigest().encode("ascii")

    def as_legacy_object_chunks(self, compression_level: int = -1) -> Iterator[bytes]:
        yield zlib.compress(self._data, compression_level)


def tree_body(entries: dict[bytes, tuple[int, bytes]]) -> bytes:
    """A tree object's body from {name: (mode, hex id)}, in git's order (a folder sorts as
    if its name ended in "/"; a gitlink as a file), modes written as git writes them."""
    order = sorted(entries, key=lambda n: n + b"/" if stat.S_ISDIR(entries[n][0]) else n)
    return b"".join(
        b"%o %s\x00%s" % (entries[n][0], n, bytes.fromhex(entries[n][1].decode())) for n in order
    )


def zone(offset: int) -> bytes:
    """``+hhmm`` / ``-hhmm`` from seconds east of UTC, as git writes it."""
    sign, offset = (b"-", -offset) if offset < 0 else (b"+", offset)
    return b"%s%02d%02d" % (sign, offset // 3600, offset // 60 % 60)


def commit_body(
    tree: bytes,
    parents: list[bytes],
    ident: bytes,
    author_time: int,
    commit_time: int,
    tz: int,
    message: bytes,
) -> bytes:
    """A commit object's body as git (and dulwich) write it: author and committer ``ident``,
    both in timezone ``tz`` (seconds east of UTC), no encoding header."""
    text = b"tree %s\n" % tree + b"".join(b"parent %s\n" % p for p in parents)
    text += b"author %s %d %s\n" % (ident, author_time, zone(tz))
    text += b"committer %s %d %s\n\n" % (ident, commit_time, zone(tz))
    return text + message


class ObjectWriter:
    """Adds objects to ``<common_dir>/objects``; an object that exists is never rewritten."""

    def __init__(self, objects_dir: Path) -> None:
        self.objects_dir = objects_dir
        self._root = str(objects_dir)  # paths as strings: a run writes ~8 objects, 16 joins
        self.objects: dict[str, GitObject] = {}  # everything added, to write again if pruned
        self.streams: dict[str, Streamed] = {}  # blobs written from a stream, likewise
        self._lock = threading.Lock()  # add_stream runs on several threads

    def add(self, obj: GitObject) -> bytes:
        sha = obj.id
        hexsha = sha.decode("ascii")
        self.objects[hexsha] = obj
        return self._write(obj, hexsha, check=True)

    def add_stream(self, content: Streamed) -> bytes:
        """A blob of ``content.size`` bytes, hashed and compressed as it is read: git's
        loose format puts the size first, so a big series never has to be in memory."""
        for _attempt in range(10):
            done = self._write_stream(content)
            if done is not None:
                with self._lock:
                    self.streams[done.decode("ascii")] = content
                return done
        raise StorageError(
            f"cannot write git object in {self.objects_dir}: a concurrent `git prune` kept"
            " removing it; retry"
        )

    def _write_stream(self, content: Streamed) -> bytes | None:
        """One try: the compressed object in a temp file, renamed once its id is known; None
        when a concurrent ``git prune`` took the temp file away."""
        head = b"blob %d\x00" % content.size
        import hashlib  # OpenSSL's SHA-1: the fast one for big blobs

        sha = hashlib.sha1(head)
        pack = zlib.compressobj(1)
        try:
            fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=self.objects_dir)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed(exc) from None
        try:
            os.fchmod(fd, 0o444)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pack.compress(head))
                size = 0
                for chunk in content.chunks():
                    size += len(chunk)
                    sha.update(chunk)
                    fh.write(pack.compress(chunk))
                fh.write(pack.flush())
            if size != content.size:
                raise StorageError(
                    f"a streamed object was {size} bytes, not the {content.size} announced;"
                    " report this xp bug"
                )
            hexsha = sha.hexdigest()
            subdir = self.objects_dir / hexsha[:2]
            subdir.mkdir(exist_ok=True)
            os.replace(tmp, subdir / hexsha[2:])
            tmp = ""
        except FileNotFoundError:
            return None
        except StorageError:
            raise  # says what failed itself (a streamed source that changed size)
        except OSError as exc:
            raise self._failed(exc) from None
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return hexsha.encode("ascii")

    def _failed(self, exc: OSError) -> StorageError:
        return StorageError(
            f"cannot write git object in {self.objects_dir}: {exc.strerror};"
            " free disk space or fix permissions and retry"
        )

    def not_loose(self) -> list[str]:
        """The objects added here that are no longer loose files: a ``git gc`` that ran (and
        may have ended) since they were written pruned them, or packed them (a stat each)."""
        root = str(self.objects_dir)
        return [
            h
            for h in [*self.objects, *self.streams]
            if not os.path.exists(os.path.join(root, h[:2], h[2:]))
        ]

    def rewrite(self, hexshas: list[str]) -> None:
        """Write these objects (added before) again: a concurrent prune took them."""
        for hexsha in hexshas:
            obj = self.objects.get(hexsha)
            if obj is not None:
                self._write(obj, hexsha, check=False)
            elif hexsha in self.streams:
                self.add_stream(self.streams[hexsha])

    def _write(self, obj: GitObject, hexsha: str, check: bool) -> bytes:
        sha = hexsha.encode("ascii")
        subdir = f"{self._root}/{hexsha[:2]}"
        path = f"{subdir}/{hexsha[2:]}"
        if check and os.path.exists(path):
            return sha
        try:
            for attempt in range(10):
                # objects/xx is made when a first try finds it missing (`git prune` removes
                # emptied ones): a mkdir per folder was a tenth of writing a few hundred objects
                if attempt:
                    Path(subdir).mkdir(exist_ok=True)
                if self._write_once(obj, subdir, path):
                    break
            else:
                raise FileNotFoundError(2, "a concurrent `git prune` kept removing it")
        except OSError as exc:
            raise StorageError(
                f"cannot write git object in {self.objects_dir}: {exc.strerror};"
                " free disk space or fix permissions and retry"
            ) from None
        return sha

    @staticmethod
    def _write_once(obj: GitObject, subdir: str, path: str) -> bool:
        """Write one object via a temp file; False when a concurrent ``git prune`` took the
        temp file or the folder away (it deletes every ``tmp_*`` file: the caller retries)."""
        try:
            fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=subdir)
        except FileNotFoundError:
            return False
        try:
            os.fchmod(fd, 0o444)
            with os.fdopen(fd, "wb") as fh:
                for chunk in obj.as_legacy_object_chunks(compression_level=1):
                    fh.write(chunk)
            # rename, not git's link-then-unlink: one metadata operation fewer per object,
            # and replacing an existing object is harmless (same name, same bytes).
            os.replace(tmp, path)
            tmp = ""
        except FileNotFoundError:
            return False
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return True


_local = threading.local()  # each thread its own stores: pack reads seek shared files
_opened: list[DiskObjectStore] = []
_opened_lock = threading.Lock()


def object_store(objects_dir: Path | str) -> DiskObjectStore:
    """A dulwich object store per repository, thread and process, for reads: its pack
    indexes load once, it sees packs added later (it rescans on a miss), and it is closed at
    exit rather than left for the garbage collector to complain about."""
    from dulwich.object_store import DiskObjectStore

    stores: dict[str, DiskObjectStore] | None = getattr(_local, "stores", None)
    if stores is None:
        stores = _local.stores = {}
    key = str(objects_dir)
    store = stores.get(key)
    if store is None:
        store = stores[key] = DiskObjectStore(key)
        with _opened_lock:
            if not _opened:
                atexit.register(_close_stores)
            _opened.append(store)
    return store


def _close_stores() -> None:
    with _opened_lock:
        while _opened:
            _opened.pop().close()


class PackWriter:
    """Collects objects in memory and writes them as one pack on ``flush``: for writes in
    bulk (``xp import``), where a file per object costs more than the objects. Refs to these
    objects may be written only after ``flush``."""

    def __init__(self, objects_dir: Path) -> None:
        self.objects_dir = objects_dir
        self._root = str(objects_dir)  # paths as strings: a run writes ~8 objects, 16 joins
        self._pending: dict[bytes, GitObject] = {}

    def add(self, obj: GitObject) -> bytes:
        sha = obj.id
        self._pending.setdefault(sha, obj)
        return sha

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        if not self._pending:
            return
        from dulwich.object_store import DiskObjectStore

        # level 1, as loose objects here: most of the time is compression otherwise
        store = DiskObjectStore(str(self.objects_dir), pack_compression_level=1)
        try:
            pack = store.add_objects([(_shafile(obj), None) for obj in self._pending.values()])
            if pack is not None:
                pack.close()
        except OSError as exc:
            raise StorageError(
                f"cannot write a git pack in {self.objects_dir}: {exc.strerror};"
                " free disk space or fix permissions and retry"
            ) from None
        finally:
            store.close()
        self._pending.clear()


_TYPE_NUMS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def _shafile(obj: GitObject) -> ShaFile:
    """dulwich's object for ``obj`` (its pack writer takes nothing else)."""
    from dulwich.objects import ShaFile

    if isinstance(obj, ShaFile):
        return obj
    assert isinstance(obj, RawObject)
    return ShaFile.from_raw_string(_TYPE_NUMS[obj.kind], obj.body)
