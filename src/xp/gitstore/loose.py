"""Reading loose objects straight from ``objects/xx/...``, where ``git cat-file`` is slower.

A repository whose runs xp made and nothing packed since (xp writes loose objects and never
runs ``git gc``) holds ~7 loose objects per run: a cold index build of 100,000 such runs
made ``git cat-file --batch`` open, mmap and inflate 800,000 files on one core, ~13 s of
system time. A loose object is git's documented format (``<type> <size>\\0<content>``,
zlib-deflated, named by the SHA-1 of the inflated bytes), so reading it here costs one open,
one read and one close, and both processes of a big build do it.

Strict, and never the only way: an object is returned only when its file inflates completely,
its header names a known type and the exact size that follows, and its bytes hash to its
name; anything else (packed, absent, corrupt, truncated, another hash function) is None, and
the caller asks ``git cat-file``, which reads packs and alternates and says what is wrong.
A name that is not a loose file costs one failed ``open`` (~1 us); callers that meet many
in a row stop asking (a packed repository).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HEX = "0123456789abcdef"
_TYPES = frozenset((b"blob", b"tree", b"commit", b"tag"))
_BUF = 1 << 16  # most record objects are far smaller: one read
MAX_SIZE = 64 << 20  # a bigger loose object is left to git (never held twice here)


class LooseObjects:
    """The loose objects of one repository's object store (``common_dir/objects``)."""

    def __init__(self, objects_dir: Path) -> None:
        import hashlib  # OpenSSL's SHA-1: ~1 us an object where CPython's own takes ~3

        self.root = os.fspath(objects_dir) + os.sep
        self._buf = bytearray(_BUF)
        self._sha1 = hashlib.sha1

    def read(self, sha: str) -> tuple[bytes, bytes] | None:
        """(type, content) of the loose object ``sha``, or None when it is not a loose object
        here that reads back exactly as named (then ask git)."""
        if len(sha) != 40 or sha.strip(_HEX):  # a name from anyone: never a path
            return None
        try:
            fd = os.open(f"{self.root}{sha[:2]}/{sha[2:]}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # not loose (packed, absent) or unreadable
            return None
        try:
            raw = self._read_all(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        if raw is None:
            return None
        return parse(raw, sha, self._sha1)

    def _read_all(self, fd: int) -> bytes | None:
        buf = self._buf
        got = os.readv(fd, [buf])
        if got < _BUF:
            return bytes(memoryview(buf)[:got])
        parts = [bytes(buf)]
        total = got
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
            total += len(chunk)
            if total > MAX_SIZE:
                return None
        return b"".join(parts)


def parse(raw: bytes, sha: str, sha1: Callable[[bytes], Any]) -> tuple[bytes, bytes] | None:
    """(type, content) of the deflated loose object file ``raw`` named ``sha``, or None unless
    it inflates completely to ``<type> <size>\\0`` and exactly ``size`` bytes hashing to
    ``sha`` (git's format; nothing may follow the zlib stream)."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, MAX_SIZE + 64)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        return None  # truncated, trailing garbage, or larger than we read here
    nul = data.find(b"\0", 0, 32)
    if nul < 0:
        return None
    kind, _, size = data[:nul].partition(b" ")
    if kind not in _TYPES or not size.isdigit() or (len(size) > 1 and size[:1] == b"0"):
        return None
    if int(size) != len(data) - nul - 1:
        return None
    if sha1(data).hexdigest() != sha:
        return None
    return kind, data[nul + 1 :]
