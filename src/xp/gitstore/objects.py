"""Write git objects as loose files, the way git itself does (temp file, then link).

dulwich serialises the objects; we write them ourselves because dulwich's object store
costs a Repo open and re-writes packed objects, and a run commit must stay in milliseconds.

A new object is unreachable until the run's ref is written: a ``git prune --expire=now``
that decided what is reachable before that deletes it (git documents the race; for xp's
answer see ``xp.gitstore.protect``). Its temp files (``tmp_obj_*``) go too: writes retry.
"""

from __future__ import annotations

import contextlib
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
        self.objects: dict[str, ShaFile] = {}  # everything added, to write again if pruned

    def add(self, obj: ShaFile) -> bytes:
        sha = obj.id
        hexsha = sha.decode("ascii")
        self.objects[hexsha] = obj
        return self._write(obj, hexsha, check=True)

    def not_loose(self) -> list[str]:
        """The objects added here that are no longer loose files: a ``git gc`` that ran (and
        may have ended) since they were written pruned them, or packed them (a stat each)."""
        root = str(self.objects_dir)
        return [h for h in self.objects if not os.path.exists(os.path.join(root, h[:2], h[2:]))]

    def rewrite(self, hexshas: list[str]) -> None:
        """Write these objects (added before) again: a concurrent prune took them."""
        for hexsha in hexshas:
            obj = self.objects.get(hexsha)
            if obj is not None:
                self._write(obj, hexsha, check=False)

    def _write(self, obj: ShaFile, hexsha: str, check: bool) -> bytes:
        sha = hexsha.encode("ascii")
        subdir = self.objects_dir / hexsha[:2]
        path = subdir / hexsha[2:]
        if check and os.path.exists(path):
            return sha
        try:
            for attempt in range(10):
                if attempt or hexsha[:2] not in self._made_dirs:
                    subdir.mkdir(exist_ok=True)  # `git prune` removes emptied objects/xx
                    self._made_dirs.add(hexsha[:2])
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
    def _write_once(obj: ShaFile, subdir: Path, path: Path) -> bool:
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
