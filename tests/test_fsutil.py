"""fsutil: atomic writes, the placement ladder, symlinks that lead out, temp folders of dead
processes. Real files, real processes."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from xp import fsutil
from xp.errors import CorruptObjectError, StorageError, UnsafePathError


def _src(tmp_path: Path, data: bytes = b"payload") -> tuple[Path, str]:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    return src, hashlib.sha256(data).hexdigest()


def test_place_makes_files_of_their_own_by_default(tmp_path: Path) -> None:
    src, sha = _src(tmp_path)
    dest = tmp_path / "w" / "a" / "f"
    kind = fsutil.place(src, dest, writable=True, sha256=sha)
    assert kind in fsutil.SAFE_KINDS
    assert dest.read_bytes() == b"payload"
    assert dest.stat().st_ino != src.stat().st_ino
    assert dest.stat().st_mode & stat.S_IWUSR
    assert fsutil.place(src, tmp_path / "w" / "ro", ("copy",), writable=False) == "copy"
    assert not (tmp_path / "w" / "ro").stat().st_mode & 0o222
    assert fsutil.place(src, tmp_path / "w" / "hl", fsutil.LINK_KINDS[1:], writable=True)
    assert (tmp_path / "w" / "hl").stat().st_ino == src.stat().st_ino  # the opt-in
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["a", "hl", "ro"]  # no temp


def test_place_checks_the_bytes_before_the_rename(tmp_path: Path) -> None:
    src, _sha = _src(tmp_path)
    dest = tmp_path / "w" / "f"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    for kinds in (("copy",), ("hardlink",)):
        with pytest.raises(CorruptObjectError, match="is corrupt"):
            fsutil.place(src, dest, kinds, writable=True, sha256="0" * 64)
        assert dest.read_bytes() == b"old"
    assert [p.name for p in dest.parent.iterdir()] == ["f"]


def test_symlinks_out_of_the_root_are_never_written_through(tmp_path: Path) -> None:
    src, _sha = _src(tmp_path)
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "out").symlink_to(outside)  # a folder symlink leading out
    (root / "inner").mkdir()
    (root / "in").symlink_to("inner")  # one staying inside
    (outside / "victim").write_text("precious")
    (root / "f").symlink_to(outside / "victim")  # a final symlink: replaced, not followed
    with pytest.raises(UnsafePathError, match="outside"):
        fsutil.place(src, root / "out" / "x", writable=True, root=root)
    with pytest.raises(UnsafePathError, match="outside"):
        fsutil.atomic_write(root / "out" / "deeper" / "x", b"x", root=root)
    with pytest.raises(UnsafePathError, match="outside"):
        fsutil.check_inside(root, "out/x")
    with pytest.raises(UnsafePathError, match="is outside"):
        fsutil.place(src, root / ".." / "x", writable=True, root=root)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    fsutil.place(src, root / "in" / "x", writable=True, root=root)
    assert (root / "inner" / "x").read_bytes() == b"payload"
    fsutil.atomic_write(root / "f", b"new", root=root)
    assert (outside / "victim").read_text() == "precious"
    assert not (root / "f").is_symlink()
    assert (root / "f").read_bytes() == b"new"


def test_a_file_where_a_folder_must_be_is_a_storage_error(tmp_path: Path) -> None:
    src, _sha = _src(tmp_path)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a").write_text("file")
    with pytest.raises(StorageError, match="a file where a folder must be"):
        fsutil.place(src, tmp_path / "root" / "a" / "b", writable=True, root=tmp_path / "root")


def test_atomic_write_keeps_the_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("lr: 0.1\n")
    path.chmod(0o600)
    fsutil.atomic_write(path, "lr: 0.2\n")
    assert path.read_text() == "lr: 0.2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fsutil.atomic_write(tmp_path / "hook", "#!/bin/sh\n", mode=0o755)
    assert stat.S_IMODE((tmp_path / "hook").stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook", "params.yaml"]


def test_move_into_walks_the_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    staged = tmp_path / "staged"
    staged.write_bytes(b"x")
    with pytest.raises(UnsafePathError):
        fsutil.move_into(staged, root / "link" / "f", root=root)
    fsutil.move_into(staged, root / "sub" / "deep" / "f", root=root)
    assert (root / "sub" / "deep" / "f").read_bytes() == b"x"
    assert not staged.exists()


CHILD = """
import os, sys, time
from pathlib import Path
from xp import fsutil
folder = fsutil.private_tmp(Path(sys.argv[1]))
(folder / "leftover").write_text("half")
print(folder, flush=True)
time.sleep(60)
"""


def test_temp_folders_of_dead_processes_are_found_and_live_ones_are_not(tmp_path: Path) -> None:
    xp_dir = tmp_path / "xp"
    mine = fsutil.private_tmp(xp_dir)
    assert fsutil.private_tmp(xp_dir) == mine  # one per process
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(xp_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        theirs = Path(proc.stdout.readline().strip())
        assert (theirs / "leftover").exists()
        assert fsutil.stale_tmp(xp_dir) == []  # both owners live
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    stale = fsutil.stale_tmp(xp_dir)
    assert [s.folder for s in stale] == [theirs]
    assert fsutil.stale_tmp(xp_dir) == []  # a second cleaner waits its turn
    stale[0].remove()
    assert not theirs.exists()
    assert sorted(p.name for p in (xp_dir / "tmp").iterdir()) == [
        mine.name,
        mine.name + fsutil.OWNER_SUFFIX,
    ]


def test_sync_filesystem_flushes_a_folder_s_file_system_or_says_why_not(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    fsutil.sync_filesystem(tmp_path)  # syncfs on Linux: returns once written
    if sys.platform.startswith("linux"):
        assert fsutil._syncfs() is not None
    with pytest.raises(FileNotFoundError):
        fsutil.sync_filesystem(tmp_path / "absent")
