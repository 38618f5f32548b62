"""``xp reproduce RUN [--check]``: run a recorded run again, on its own code, and compare.

The recorded command runs in a temporary checkout of the run's baseline with the run's
tree (its code and params files exactly as they were; the record folder left out) and, where
the run logged data inputs, that data: from the cache when it was logged with
``cache=True`` (re-hashed on the way), else from the workspace when the file there still has
the recorded hash (a warning otherwise). The new run is tagged ``xp.reproduces: <original id>``.

A run fetched from someone else is their code and their command: ``reproduce`` runs the
command of a run this clone did not record (``gitstore.commit.recorded_here``) only with
``trust=True``, which the CLI asks for after showing the command and where the run came
from. Whatever the trust, a recorded working folder or program path that leaves the
repository is refused, and inputs are written without following symlinks out of the checkout.

The check compares the original's final metrics with the new run's, numpy's ``isclose``
rule with the original as reference: ``|new - old| <= atol + rtol * |old|``. NaN matches NaN
(a run that diverged to NaN and does so again has reproduced), an infinity matches only the
same infinity, a metric the new run lacks is a mismatch, and one only the new run has is
listed without failing the check, and metrics named by an ``ignore`` glob (timings such as
``train_seconds`` never reproduce) are shown but not judged. A reproduction whose command
fails fails the check.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp import fsutil
from xp.artifacts import cache
from xp.errors import (
    CorruptObjectError,
    ExecutionError,
    InvalidValueError,
    UnsafePathError,
    UntrustedRunError,
)
from xp.execution.run_command import Interrupts, LaunchResult, Sink, run_to_end, start
from xp.format import RunRef
from xp.gitstore.repo import GitRepo
from xp.record.model import FileEntry, RunRecord

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
TAG = "xp.reproduces"


@dataclass(frozen=True)
class Comparison:
    metric: str
    original: float | None
    reproduced: float | None
    ok: bool
    note: str = ""


@dataclass
class ReproduceResult:
    original: str
    run: LaunchResult
    comparisons: list[Comparison] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.run.status == "finished" and all(c.ok for c in self.comparisons)


def close(old: float, new: float, rtol: float, atol: float) -> bool:
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) and math.isnan(new)
    if math.isinf(old) or math.isinf(new):
        return old == new
    return abs(new - old) <= atol + rtol * abs(old)


def compare(
    old: dict[str, float],
    new: dict[str, float],
    rtol: float,
    atol: float,
    ignore: tuple[str, ...] = (),
) -> list[Comparison]:
    """One row per metric; names matching an ``ignore`` glob (e.g. ``*_seconds``) pass."""
    from fnmatch import fnmatchcase

    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if any(fnmatchcase(key, pat) for pat in ignore):
            out.append(Comparison(key, a, b, True, "ignored"))
        elif a is None:
            out.append(Comparison(key, None, b, True, "new metric"))
        elif b is None:
            out.append(Comparison(key, a, None, False, "not logged by the reproduction"))
        else:
            out.append(Comparison(key, a, b, close(float(a), float(b), rtol, atol)))
    return out


def command_of(record: RunRecord) -> list[str]:
    """The command to re-run: ``xp run``'s, or ``python <script>`` for a script run alone."""
    cmd = [str(c) for c in record.meta.get("command") or []]
    prog = os.path.basename(cmd[0]) if cmd else ""
    if not cmd or prog in ("xp", "git-xp", "__main__.py") or cmd[1:3] == ["-m", "xp"]:
        raise ExecutionError(
            f"run {record.id} recorded no command xp can re-run (it was recorded by"
            f" {' '.join(cmd[:2]) or 'the API from an interactive session'}); record runs with"
            " `xp run -- CMD` or a script to make them reproducible"
        )
    if _is_notebook(cmd):
        raise ExecutionError(
            f"run {record.id} was recorded in a notebook (a Jupyter kernel), and a kernel"
            " cannot be re-run: export the notebook as a script (jupyter nbconvert --to script"
            " NOTEBOOK) and record runs with `xp run -- python SCRIPT.py`"
        )
    if cmd[0].endswith(".py"):
        return [sys.executable, *cmd]
    return cmd


_KERNELS = ("ipykernel_launcher.py", "ipykernel", "ipykernel_launcher", "colab_kernel_launcher.py")


def _is_notebook(cmd: list[str]) -> bool:
    """A Jupyter/IPython kernel's argv (``ipykernel_launcher.py -f kernel-*.json``): started
    again it waits for a client forever instead of running anything."""
    progs = [os.path.basename(c) for c in cmd[:3]]
    if any(p in _KERNELS or p.startswith(("jupyter", "ipython")) for p in progs):
        return True
    if "-m" in cmd[:3] and any(m in _KERNELS for m in cmd[:4]):
        return True
    return any(os.path.basename(c).startswith("kernel-") and c.endswith(".json") for c in cmd)


@dataclass(frozen=True)
class Origin:
    """Where a run came from, and what reproducing it would run."""

    run_id: str
    name: str
    ref: str
    commit: str
    command: list[str]
    cwd: str
    recorded_here: bool  # this clone wrote the run's commit
    author: str  # the run commit's author, as its creator's git set it

    @property
    def source(self) -> str:
        """'this clone', or the git remote it was fetched from, for messages."""
        if self.recorded_here:
            return "this clone"
        parsed = RunRef.parse(self.ref)
        if parsed is not None and parsed.remote:
            return f"git remote {parsed.remote!r} (author {self.author})"
        return f"another clone (author {self.author}; not recorded here)"


def origin(repo: GitRepo, *, run: str) -> Origin:
    """The run ``run`` names, where it came from and the command reproducing it would run;
    raises when that command could never run safely (see ``check_paths``)."""
    return _origin(repo, run)[0]


def _origin(repo: GitRepo, run: str) -> tuple[Origin, RunRecord]:
    from xp.gitstore.commit import author_of, recorded_here
    from xp.query.resolve import load_run

    view = load_run(repo, run)
    record = view.record
    if not fmt.ID_RE.match(record.id):
        raise ExecutionError(
            f"run {view.ref} has an invalid id {record.id[:40]!r} in its record; it was not"
            " written by xp, refusing to reproduce it"
        )
    mine = recorded_here(repo, view.commit)
    command = command_of(record)
    cwd = check_paths(record, command, local=mine)
    author = author_of(repo, view.commit)
    return Origin(record.id, record.name, view.ref, view.commit, command, cwd, mine, author), record


def check_paths(record: RunRecord, command: list[str], *, local: bool) -> str:
    """The recorded working folder, which must be inside the repository; for a run from
    elsewhere (``local`` False), the program and script paths must be too. Returns the cwd."""
    cwd = str(record.meta.get("cwd") or ".")
    if cwd != ".":
        try:
            cwd = cache.clean_name(cwd)
        except InvalidValueError:
            raise UnsafePathError(
                f"run {record.id} recorded the working folder {cwd!r}, outside the repository;"
                " refusing to run its command"
            ) from None
    paths = [command[0]]
    if os.path.basename(command[0]).startswith("python") and len(command) > 1:
        paths.append(command[1])  # the script python runs
    if command[0] == sys.executable and len(command) > 1:
        paths = [command[1]]  # `train.py ...` runs with this interpreter
    for path in paths if not local else []:
        if ("/" not in path and os.sep not in path) or path.startswith("-"):
            continue  # a name looked up on PATH, or an option
        try:
            clean = cache.clean_name(os.path.join(cwd, path))
        except InvalidValueError:
            clean = ""
        if not clean or os.path.isabs(path):
            raise UnsafePathError(
                f"run {record.id} runs {path!r}, outside the repository; refusing to run a"
                " command from elsewhere that reaches out of its own files"
            )
    return cwd


def _cached(cache_dir: Path, entry_sha: str) -> Path | None:
    """The cached object, if it is there and whole (a corrupt one is removed)."""
    obj = cache.object_path(cache_dir, entry_sha)
    if not obj.is_file():
        return None
    if cache.verify(cache_dir, entry_sha):
        return obj
    obj.unlink(missing_ok=True)
    return None


def _place_inputs(repo: GitRepo, checkout: Path, inputs: tuple[FileEntry, ...]) -> list[str]:
    """Recorded data into the checkout: from the cache (re-hashed), else the workspace if
    unchanged; never written through a symlink out of the checkout."""
    from xp.execution.temp_checkout import link_in

    warnings: list[str] = []
    cache_dir = cache.cache_dir(repo)
    kinds = cache.settings(repo).links
    for entry in inputs:
        rel = cache.clean_name(entry.path)
        dest = checkout / rel
        fsutil.check_inside(checkout, rel)
        if os.path.lexists(dest):
            continue
        if entry.kind == "dir":
            manifest = _cached(cache_dir, entry.sha256)
            if manifest is not None:
                for item in cache.parse_manifest(manifest.read_bytes(), entry.path):
                    part = f"{entry.path}/{item.path}"
                    if not _place_one(cache_dir, item.sha256, checkout, f"{rel}/{item.path}"):
                        warnings.append(f"data input {part} is not cached (or was corrupt)")
                continue
        elif _place_one(cache_dir, entry.sha256, checkout, rel, kinds):
            continue
        src = repo.worktree / entry.path
        if not src.exists():
            warnings.append(
                f"data input {entry.path} is neither cached nor in the workspace; the command"
                " must make it"
            )
            continue
        now = cache.hash_input(src, entry.path)
        if now.sha256 != entry.sha256:
            warnings.append(
                f"data input {entry.path} changed since the run (sha256 {now.sha256[:12]}, was"
                f" {entry.sha256[:12]}) and is not cached; reproducing with today's data"
            )
        link_in(src, checkout, rel, kinds)
    return warnings


def _place_one(
    cache_dir: Path, sha: str, root: Path, rel: str, kinds: tuple[str, ...] = fsutil.SAFE_KINDS
) -> bool:
    """A cached object at ``root/rel``, its bytes checked on the way; False when it is not
    cached, or was corrupt (then it is removed from the cache)."""
    obj = cache.object_path(cache_dir, sha)
    if not obj.is_file():
        return False
    try:
        cache.materialise(obj, root / cache.clean_name(rel), kinds, root=root, sha256=sha)
    except CorruptObjectError:
        obj.unlink(missing_ok=True)
        return False
    return True


def reproduce(
    repo: GitRepo,
    *,
    run: str,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    sink: Sink | None = None,
    name: str | None = None,
    ignore: tuple[str, ...] = (),
    trust: bool = False,
) -> ReproduceResult:
    """Re-run ``run`` on its recorded code and data; the comparison is in the result.

    A run this clone did not record runs only with ``trust`` (UntrustedRunError otherwise,
    showing the command and where the run came from).
    """
    from xp.execution.temp_checkout import temp_checkout
    from xp.gitstore.commit import tree_of

    if rtol < 0 or atol < 0:
        raise InvalidValueError("--rtol and --atol must be zero or positive")
    where, record = _origin(repo, run)
    if not where.recorded_here and not trust:
        raise UntrustedRunError(
            f"run {where.run_id} comes from {where.source}, and reproducing it runs its"
            f" command: {shlex.join(where.command)} (in {where.cwd}); read it, then pass"
            " --trust to run it"
        )
    baseline = record.meta.get("baseline")
    label = f"reproduce-{where.run_id}"
    # SIGTERM, SIGHUP and Ctrl-C, from the checkout's making to its removal, go to the
    # command (if it runs yet) and end it; the checkout is then removed on the way out.
    interrupts = Interrupts()
    with interrupts, temp_checkout(repo, baseline, tree_of(repo, where.commit), label) as wt:
        warnings = _place_inputs(repo, wt.worktree, record.inputs)
        here = wt.worktree / where.cwd
        fsutil.check_inside(wt.worktree, f"{where.cwd}/x")
        if not here.is_dir() or here.is_symlink():
            here = wt.worktree
        started = time.time()
        new = start(
            wt,
            command=where.command,
            cwd=where.cwd,
            name=name or f"{record.name}-repro",
            experiment=record.experiment,
            message=None,
            tags={TAG: record.id},
        )
        result = run_to_end(new, where.command, here, wt.worktree, started, [], sink, interrupts)
    if interrupts.signal is not None:
        raise KeyboardInterrupt  # the reproduction is recorded as killed; nothing is left
    comparisons = compare(dict(record.metrics), result.metrics, rtol, atol, ignore)
    return ReproduceResult(record.id, result, comparisons, warnings + result.warnings)
