"""Content-addressed side cache for artifacts: ``<git common dir>/xp/cache/sha256/ab/cd/<hash>``.

Files are copied in one streaming pass that hashes as it writes, land under a temp name and
are renamed into place read-only, so a reader never sees a partial object and two writers of
the same content both succeed with one copy kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from xp.errors import InvalidValueError, StorageError
from xp.record import FileEntry

CHUNK = 1 << 20


def object_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "sha256" / sha256[:2] / sha256[2:4] / sha256


def hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def add_file(cache_dir: Path, src: Path) -> tuple[str, int]:
    """Copy ``src`` into the cache; returns (sha256, size)."""
    tmp_dir = cache_dir / "tmp"
    tmp = tmp_dir / f"{secrets.token_hex(8)}.tmp"
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
        sha = h.hexdigest()
        final = object_path(cache_dir, sha)
        if final.exists():
            tmp.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        return sha, size
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StorageError(
            f"cannot store {src} in the artifact cache {cache_dir}: {exc.strerror};"
            " free disk space or fix permissions and retry"
        ) from None


def clean_name(name: str) -> str:
    """An artifact's recorded path: relative, no '..', so restoring it cannot escape."""
    norm = name.replace("\\", "/").strip()
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or norm.startswith("/") or ".." in parts or ":" in parts[0][1:2]:
        raise InvalidValueError(
            f"artifact name {name!r} must be a relative path inside the run (no '..', not absolute)"
        )
    return "/".join(parts)


def _walk(root: Path) -> list[tuple[Path, str]]:
    """(file, path relative to root) for every file below root; symlinks must stay inside."""
    real_root = root.resolve()
    out: list[tuple[Path, str]] = []
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            full = Path(dirpath) / name
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidValueError(
                        f"{full} links to {target}, outside {root}; copy the file in instead"
                    )
                if target.is_dir():
                    continue
            out.append((full, full.relative_to(root).as_posix()))
    return out


def add_path(cache_dir: Path, src: Path, name: str) -> list[FileEntry]:
    """Cache a file or every file of a folder; entries are named ``name[/relpath]``."""
    if src.is_dir():
        return [
            FileEntry(path=f"{name}/{rel}", sha256=sha, size=size)
            for full, rel in _walk(src)
            for sha, size in [add_file(cache_dir, full)]
        ]
    sha, size = add_file(cache_dir, src)
    return [FileEntry(path=name, sha256=sha, size=size)]


def hash_input(src: Path, name: str, cache_dir: Path | None = None) -> FileEntry:
    """A data version: the file's sha256, or for a folder the sha256 of its sorted manifest."""
    if not src.is_dir():
        sha, size = add_file(cache_dir, src) if cache_dir else hash_file(src)
        return FileEntry(path=name, sha256=sha, size=size)
    manifest = []
    total = 0
    for full, rel in _walk(src):
        sha, size = add_file(cache_dir, full) if cache_dir else hash_file(full)
        manifest.append(f"{sha}  {size}  {rel}\n")
        total += size
    digest = hashlib.sha256("".join(manifest).encode()).hexdigest()
    return FileEntry(path=name, sha256=digest, size=total, files=len(manifest), kind="dir")
