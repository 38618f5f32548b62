"""Write git objects as loose files, the way git itself does (temp file, then link).

dulwich serialises the objects; we write them ourselves because dulwich's object store
costs a Repo open and re-writes packed objects, and a run commit must stay in milliseconds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dulwich.objects import ShaFile

from xp.errors import StorageError

_made_dirs: dict[str, set[str]] = {}  # objects/xx folders known to exist, per repository


class ObjectWriter:
    """Adds objects to ``<common_dir>/objects``; an object that exists is never rewritten."""

    def __init__(self, objects_dir: Path) -> None:
        self.objects_dir = objects_dir
        self._made_dirs = _made_dirs.setdefault(str(objects_dir), set())

    def add(self, obj: ShaFile) -> bytes:
        sha = obj.id
        hexsha = sha.decode("ascii")
        subdir = self.objects_dir / hexsha[:2]
        path = subdir / hexsha[2:]
        if os.path.exists(path):
            return sha
        chunks = obj.as_legacy_object_chunks(compression_level=1)
        try:
            if hexsha[:2] not in self._made_dirs:
                subdir.mkdir(exist_ok=True)
                self._made_dirs.add(hexsha[:2])
            try:
                fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=subdir)
            except FileNotFoundError:  # `git prune` removes empty objects/xx folders
                subdir.mkdir(exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=subdir)
            try:
                os.fchmod(fd, 0o444)
                with os.fdopen(fd, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                # rename, not git's link-then-unlink: one metadata operation fewer per object,
                # and replacing an existing object is harmless (same name, same bytes).
                os.replace(tmp, path)
                tmp = ""
            finally:
                if tmp:
                    os.unlink(tmp)
        except OSError as exc:
            raise StorageError(
                f"cannot write git object in {self.objects_dir}: {exc.strerror};"
                " free disk space or fix permissions and retry"
            ) from None
        return sha
