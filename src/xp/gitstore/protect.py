"""Keeping a live run's git objects from ``git gc --prune=now``, and noticing when it failed.

A run's workspace snapshot is a tree no ref reaches until the run commits, so a prune during
the run would delete it. A run that lives past its first journal flush copies the snapshot's
objects that its baseline does not already reach into a pack of their own, written by
``git index-pack --keep`` (the way ``git fetch`` protects a pack it is receiving): git never
repacks or prunes what a ``.keep`` pack holds, and the ``.keep`` file, which names the run, is
deleted once the run's commit reaches the objects. Copying the objects also proves they all
still exist; if a prune took some already, the run knows its snapshot is lost.

What a kept pack cannot cover: the first half second of a run, and objects written while a
``git gc`` is already pruning (it decided what is reachable before they existed). xp sees a
running ``git gc`` by its ``gc.pid`` file: a run commits only once such a gc has ended, checks
its snapshot first when it saw one, and checks its commit again when a gc started while it
was writing it, or when objects it has just written are no longer loose files (a gc that
started and ended within the commit, gone before it could be seen;
``xp.tracking.record_commit.commit_record``). A bare ``git prune`` leaves no ``gc.pid``;
docs/format.md section 6 says so.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from xp.gitstore.repo import GitRepo, _git_exe, git_env

GC_WAIT_SECONDS = 600.0  # at most this long for a running git gc to end
KEEP_MESSAGE = "xp: live run "  # + run id: the content of the run's .keep file


def gc_running(common_dir: Path) -> int | None:
    """The pid of a ``git gc`` running on this repository (from its ``gc.pid``), or None.

    A ``gc.pid`` left by a gc that was killed names a dead process (or another host) and
    does not count.
    """
    path = os.path.join(common_dir, "gc.pid")
    if not os.access(path, os.F_OK):  # the usual answer, without raising and catching
        return None
    try:
        with open(path, "rb") as fh:
            text = fh.read(200).decode("ascii", "replace")
    except OSError:
        return None
    pid_text, _, host = text.strip().partition(" ")
    if not pid_text.isdigit():
        return None
    pid = int(pid_text)
    import socket  # only when git gc is running

    if host and host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return pid


def wait_for_gc(common_dir: Path, pid: int, timeout: float = GC_WAIT_SECONDS) -> bool:
    """Wait until the ``git gc`` ``pid`` has ended (a gc that starts later decides what is
    reachable later, too); False when it still runs after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while gc_running(common_dir) == pid:
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def has_object(repo: GitRepo, sha: str) -> bool:
    """Whether the object exists, loose (a stat) or packed (``git cat-file -e``)."""
    if os.path.exists(repo.objects_dir / sha[:2] / sha[2:]):
        return True
    return repo.git("cat-file", "-e", sha, check=False).returncode == 0


def missing_objects(repo: GitRepo, sha: str) -> list[str]:
    """Objects below ``sha`` (a tree, or a commit without its history) that do not exist."""
    proc = repo.git("rev-list", "--objects", "--no-walk", "--missing=print", sha, check=False)
    if proc.returncode != 0:
        return [sha]  # the object itself is gone
    return [line[1:].decode() for line in proc.stdout.splitlines() if line.startswith(b"?")]


def missing_among(repo: GitRepo, shas: list[str]) -> list[str]:
    """Which of ``shas`` do not exist (one ``git cat-file --batch-check``)."""
    if not shas:
        return []
    proc = repo.git(
        "cat-file", "--batch-check", input="".join(f"{s}\n" for s in shas).encode(), check=False
    )
    return [
        line.split()[0].decode() for line in proc.stdout.splitlines() if line.endswith(b"missing")
    ]


def protect(repo: GitRepo, run_id: str, tree: str, baseline: str | None) -> bool:
    """Copy the objects of ``tree`` that ``baseline`` does not reach into a kept pack.

    False when that failed: some objects are gone already (a prune took them before the run
    could keep them), or git could not write the pack; the run checks its snapshot before
    it commits then.
    """
    revs = f"{tree}\n" + (f"^{baseline}\n" if baseline else "")
    exe, env, cwd = _git_exe(), git_env(), str(repo.worktree)
    try:
        pack = subprocess.Popen(
            [exe, "pack-objects", "--revs", "--stdout", "-q"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert pack.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            pack.stdin.write(revs.encode())
            pack.stdin.close()
        try:
            index = subprocess.run(
                [exe, "index-pack", "--stdin", f"--keep={KEEP_MESSAGE}{run_id}"],
                cwd=cwd,
                env=env,
                stdin=pack.stdout,
                capture_output=True,
            )
        finally:
            assert pack.stdout is not None
            pack.stdout.close()
        packed = pack.wait() == 0
    except OSError:
        return False  # cannot run git now: unprotected, and checked again at the end
    return packed and index.returncode == 0


def release(repo: GitRepo, run_id: str) -> None:
    """Delete the ``.keep`` of ``run_id``'s pack, if any: its commit reaches the objects now
    (or the run was set aside), and the next ``git gc`` may repack them as usual."""
    wanted = f"{KEEP_MESSAGE}{run_id}"
    for keep in _keeps(repo):
        with contextlib.suppress(OSError):
            if keep.read_text(errors="replace").strip() == wanted:
                keep.unlink()


def kept_runs(repo: GitRepo) -> dict[str, Path]:
    """Run id -> ``.keep`` file of every pack a run keeps."""
    out = {}
    for keep in _keeps(repo):
        with contextlib.suppress(OSError):
            text = keep.read_text(errors="replace").strip()
            if text.startswith(KEEP_MESSAGE):
                out[text[len(KEEP_MESSAGE) :]] = keep
    return out


def _keeps(repo: GitRepo) -> list[Path]:
    try:
        return [e for e in (repo.objects_dir / "pack").iterdir() if e.suffix == ".keep"]
    except OSError:
        return []
