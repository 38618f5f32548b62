"""Which ignored files a run read without recording them, said once per file.

Ignored files (data, downloads) are in no snapshot, so a run that reads one records nothing
about it unless it is listed under ``data:`` in ``.xp/config.yaml`` or logged with
``xp.log_input``; a sweep point or a reproduction, in a checkout of its own, will not even
find it. An audit hook (PEP 578: every ``open()`` raises an ``open`` event) notes the files a
process opens for reading while a run is live; when the run ends, those git ignores and the
run did not record are named once per clone (``<git dir>/xp/hinted-reads``).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from xp.gitstore.repo import GitRepo

_MAX = 2000  # paths noted per process: the hint is about data files, not every file read
_SKIP_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".pyi", ".dist-info", ".json.lock")
_lock = threading.Lock()
_roots: dict[str, int] = {}  # work trees of live runs in this process -> how many runs
_seen: set[str] = set()
_installed = False


def watch(worktree: Path) -> None:
    """Note reads under ``worktree`` while a run there is live (see ``unwatch``)."""
    global _installed
    with _lock:
        _roots[str(worktree)] = _roots.get(str(worktree), 0) + 1
        if not _installed:
            sys.addaudithook(_hook)  # cannot be removed: it does nothing without a live run
            _installed = True


def unwatch(worktree: Path) -> set[str]:
    """Stop noting reads for one run there; the paths read (relative to ``worktree``)."""
    root = str(worktree)
    with _lock:
        left = _roots.get(root, 0) - 1
        prefix = root.rstrip(os.sep) + os.sep
        mine = {p for p in _seen if p.startswith(prefix)}
        if left > 0:
            _roots[root] = left  # runs still live there share what was read
        else:
            _roots.pop(root, None)
            _seen.difference_update(mine)  # the next run there starts with nothing read
        return {p[len(prefix) :] for p in mine}


# CPython runs audit hooks with tracing off (unless a hook sets ``__cantrace__``), so coverage
# sees this function only where tests/tracking/test_reads.py calls it directly.
def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _roots or len(_seen) >= _MAX:
        return
    path, mode = args[0], args[1]
    if not isinstance(path, str) or (isinstance(mode, str) and any(c in mode for c in "wax+")):
        return
    if mode is None:  # os.open: flags say whether it writes
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            return
    if path.endswith(_SKIP_SUFFIXES):
        return
    full = os.path.abspath(path)
    for root in list(_roots):
        prefix = root.rstrip(os.sep) + os.sep
        if full.startswith(prefix):
            rel = full[len(prefix) :]
            parts = rel.split(os.sep)
            # hidden folders (.git, .xp, .venv) and installed packages are not data
            if any(p.startswith(".") or p in ("site-packages", "__pycache__") for p in parts):
                return
            with _lock:
                _seen.add(full)
            return


def unrecorded_ignored(repo: GitRepo, read: set[str], recorded: set[str]) -> list[str]:
    """The files of ``read`` git ignores, not in ``recorded`` (paths or folders) and not
    named before in this clone; they are remembered as named."""
    from xp.gitstore.worktree import ignored

    def covered(path: str) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in recorded)

    candidates = sorted(p.replace(os.sep, "/") for p in read)
    candidates = [p for p in candidates if not covered(p) and (repo.worktree / p).is_file()]
    if not candidates:
        return []
    marker = repo.xp_dir / "hinted-reads"
    try:
        said = set(marker.read_text(encoding="utf-8").splitlines())
    except OSError:
        said = set()
    new = [p for p in ignored(repo, candidates) if p not in said]
    if new:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            with open(marker, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{p}\n" for p in new))
        except OSError:
            pass  # a hint said twice is no harm
    return new
