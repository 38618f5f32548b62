"""Artifact bytes for the browser: found by the run's manifest, read from the cache, verified.

A request names an artifact by its path in the run's manifest; the path is only ever compared
with the manifest's entries, never joined to a folder, so ``..``, absolute paths and odd bytes
in it reach nothing. The file read is the cache object of the entry's sha256 (which must be 64
hex digits), opened without following a symlink, inside the cache folder, and hashed before
a byte is served: a manifest from a fetched run, or a tampered cache, cannot make the server
read anything else or serve bytes that are not the artifact.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp.artifacts.cache import is_sha256, object_path, settings
from xp.errors import CorruptObjectError, RemoteError
from xp.gitstore.repo import GitRepo
from xp.record.model import FileEntry

RUN_LOG = "logs/xp-run.log"  # the output `xp run` saves (docs/format.md)
CHUNK = 1 << 20

IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
_MARKDOWN = {"md", "markdown"}
_CSV = {"csv", "tsv"}
_TEXT = {"txt", "log", "json", "jsonl", "yaml", "yml", "py", "toml", "cfg", "ini", "sh", "conf"}
_TEXT |= {"html", "htm", "js", "css", "xml", "rst", "out", "err"}  # shown as text, never run


def extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def kind_of(path: str) -> str:
    """image, markdown, csv, text or binary: how the run page previews it."""
    ext = extension(path)
    if ext in IMAGE_TYPES:
        return "image"
    if ext in _MARKDOWN:
        return "markdown"
    if ext in _CSV:
        return "csv"
    if ext in _TEXT:
        return "text"
    return "binary"


def content_type(path: str) -> str:
    """From an allow-list: images as themselves, every text kind as text/plain (an HTML or
    JavaScript artifact is never served as HTML or script), anything else as bytes."""
    ext = extension(path)
    if ext in IMAGE_TYPES:
        return IMAGE_TYPES[ext]
    kind = kind_of(path)
    if kind == "csv":
        return "text/csv; charset=utf-8"
    if kind == "markdown":
        return "text/markdown; charset=utf-8"
    if kind == "text":
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def url(run_id: str, path: str, what: str = "artifacts") -> str:
    """The artifact's URL relative to the page, each path segment percent-encoded."""
    base = f"api/v1/runs/{urllib.parse.quote(run_id, safe='')}"
    if what == "log":
        return f"{base}/log"
    return f"{base}/artifacts/" + "/".join(urllib.parse.quote(p, safe="") for p in path.split("/"))


@dataclass
class Opened:
    """An open, verified file: read it with ``chunks``; close it when done."""

    fd: int
    size: int
    sha256: str | None

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            os.lseek(self.fd, start, os.SEEK_SET)
            left = self.size - start if length is None else length
            while left > 0:
                data = os.read(self.fd, min(CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_verified: set[tuple[str, int, int, int, int]] = set()
_verified_lock = threading.Lock()


class ArtifactStore:
    """The cache of one repository, for reading (nothing here writes or registers)."""

    def __init__(self, repo: GitRepo) -> None:
        self.dir = settings(repo).dir

    def describe(self, run_id: str, entry: FileEntry) -> dict[str, Any]:
        out = entry.to_dict()
        out["kind"] = kind_of(entry.path)
        available = is_sha256(entry.sha256) and self._regular(entry.sha256)
        out["available"] = available
        out["url"] = url(run_id, entry.path) if available else None
        return out

    def _regular(self, sha256: str) -> bool:
        try:
            st = os.lstat(object_path(self.dir, sha256))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode)

    def open(self, entry: FileEntry) -> Opened:
        if not is_sha256(entry.sha256):
            raise CorruptObjectError(f"artifact {entry.path!r}: {entry.sha256!r} is not a sha256")
        path = object_path(self.dir, entry.sha256)
        root = os.path.realpath(self.dir)
        if not os.path.realpath(path).startswith(root + os.sep):
            raise CorruptObjectError(
                f"artifact {entry.path!r}: its cache object is outside the cache"
            )
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CorruptObjectError(
                    f"artifact {entry.path!r}: its cache object is a symbolic link, which xp"
                    " never makes; delete it and run `xp pull --artifacts`"
                ) from None
            raise RemoteError(
                f"artifact {entry.path!r} is not in the local cache; fetch it with"
                " `xp pull --artifacts`"
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CorruptObjectError(f"artifact {entry.path!r}: the cache object is not a file")
            key = (entry.sha256, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            with _verified_lock:
                known = key in _verified
            if not known:
                digest = hashlib.sha256()
                while data := os.read(fd, CHUNK):
                    digest.update(data)
                if digest.hexdigest() != entry.sha256:
                    raise CorruptObjectError(
                        f"artifact {entry.path!r}: the cached bytes do not match sha256"
                        f" {entry.sha256[:12]}; delete the object and run `xp pull --artifacts`"
                    )
                with _verified_lock:
                    _verified.add(key)
            return Opened(fd, st.st_size, entry.sha256)
        except BaseException:
            os.close(fd)
            raise


def live_log(repo: GitRepo, run_id: str) -> Path | None:
    """The output a running ``xp run`` streams (``fmt.output_spool``: ``<id>.out`` beside
    its journal)."""
    if not fmt.ID_RE.match(run_id):
        return None
    path = fmt.output_spool(repo.xp_dir / "journal", run_id)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISREG(st.st_mode) else None


def open_plain(path: Path) -> Opened:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return Opened(fd, os.fstat(fd).st_size, None)
