"""What every way of recording a run shares: its header as it starts (the workspace
snapshot included) and the writing of its record as a commit and a ref.

``tracking.run.Run`` (the API, ``xp run``, recovery) and ``xp commit``
(``tracking.commit_workspace``, which logs nothing over time and so needs no journal,
flusher or spill) both go through here, so a run has the same record whichever made it;
``xp commit`` imports this module and not the run machinery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xp import format as fmt
from xp.config import ProjectConfig, human_size
from xp.errors import InvalidValueError, ObjectMissingError, XPError
from xp.gitstore import commit as gitcommit
from xp.gitstore import protect, repack
from xp.gitstore.objects import ObjectWriter
from xp.gitstore.refs import update_ref
from xp.gitstore.repo import GitRepo
from xp.gitstore.snapshot import Scan, snapshot
from xp.record.build import commit_message
from xp.record.context import command_line, engine_context, static_context
from xp.record.header import RunHeader
from xp.record.model import RunRecord

WRITE_BUDGET = fmt.MAX_RECORD_FILE * 3 // 4  # of one record file, estimated at each call


def new_header(
    repo: GitRepo,
    run_id: str,
    start: float,
    *,
    name: str | None,
    experiment: str | None,
    parent: str | None,
    message: str | None,
    command: list[str] | None,
    cwd: str | None,
    all_series: bool,
    auto_name: bool,
) -> RunHeader:
    """A new run's header (no snapshot yet: ``take_snapshot``); ``name`` is the run's
    name (given, or generated when ``auto_name``)."""
    from xp import __version__

    argv = command_line() if command is None else list(command)
    header = RunHeader(
        id=run_id,
        name=name or "",
        start_time=start,
        auto_name=auto_name,
        experiment=experiment or "default",
        command=[fmt.escape_text(str(a)) for a in argv],
        cwd=fmt.escape_text(cwd if cwd is not None else relative_cwd(repo.worktree)),
        context={
            k: fmt.escape_text(str(v)) for k, v in {**static_context(), **engine_context()}.items()
        },
        parent=parent,
        message=message,
        xp_version=__version__,
        pid=os.getpid(),
        all_series=all_series,
    )
    if header.command != [str(a) for a in argv]:
        header.warnings.append(
            "the command line had bytes that are not UTF-8; they are recorded as \\xNN"
        )
    return header


def take_snapshot(
    repo: GitRepo,
    config: ProjectConfig,
    header: RunHeader,
    *,
    reuse: bool,
    scan: Scan | None = None,
) -> bool:
    """Snapshot the workspace into ``header`` (tree, baseline, branch, dirty, files left
    out, said on stderr); whether a ``git gc`` was running (the commit checks the snapshot
    is whole then). ``scan``: its scan, started earlier (``snapshot.start_scan``)."""
    gc_seen = protect.gc_running(repo.common_dir) is not None
    snap = snapshot(repo, config.max_file_size, reuse=reuse, scan=scan)
    head = gitcommit.head(repo)
    header.tree = snap.tree
    header.skipped = [(fmt.escape_text(p), size) for p, size in snap.skipped]
    say_skipped(header.skipped, config.max_file_size)
    header.baseline = head.commit
    header.branch = head.branch
    header.dirty = head.commit is None or gitcommit.tree_of(repo, head.commit) != snap.tree
    return gc_seen


def wants_system_metrics(asked: bool | None, config: ProjectConfig) -> bool:
    if asked is not None:
        return bool(asked)
    env = os.environ.get("XP_SYSTEM_METRICS", "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    return config.system_metrics


def check_message(message: str | None) -> str | None:
    """A run's note (``xp commit -m``, ``description=``): lines of valid text, no NUL."""
    if message is None:
        return None
    if not isinstance(message, str):
        raise InvalidValueError(f"run description must be text, got {type(message).__name__}")
    bad = next((c for c in message if c not in "\n\t" and (c < " " or c == "\x7f")), None)
    if bad is not None:
        raise InvalidValueError(f"run description has a control character ({bad!r}); use text")
    return fmt.check_text(message, "run description")


def relative_cwd(top: Path) -> str:
    here = os.getcwd()
    return os.path.relpath(here, top).replace(os.sep, "/") if here.startswith(str(top)) else "."


def cost(key: str, text: str) -> int:
    """About how many bytes ``key: text`` takes in a YAML file (escapes counted high)."""
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if not text.isprintable():
        size += 5 * sum(not c.isprintable() for c in text)
    return len(key) + size + 8


def _fallback_tree(repo: GitRepo, writer: ObjectWriter, baseline: str | None) -> str:
    """The tree a run gets when its snapshot is gone: its baseline's, else the empty tree."""
    if baseline is not None:
        try:
            tree = gitcommit.tree_of(repo, baseline)
            if not protect.missing_objects(repo, tree):
                return tree
        except ObjectMissingError:
            pass
    return gitcommit.empty_tree(writer)


def _lost_snapshot(record: RunRecord, tree: str) -> RunRecord:
    return _warned(
        record,
        f"the workspace snapshot (tree {tree[:12]}) was pruned by a concurrent"
        " `git gc --prune=now` before the run was recorded; the run's tree is its baseline's",
    )


def _lost_baseline(record: RunRecord, baseline: str) -> RunRecord:
    return _warned(
        record,
        f"the baseline commit {baseline[:12]} no longer exists (pruned by git gc after a"
        " rewrite of history); the run commit has no parent",
    )


def _warned(record: RunRecord, warning: str) -> RunRecord:
    """``record`` with ``warning`` added to its ``meta.yaml`` warnings."""
    meta = dict(record.meta)
    meta["warnings"] = [*meta.get("warnings", []), warning]
    return dataclasses.replace(record, meta=meta)


def commit_record(
    repo: GitRepo,
    record: RunRecord,
    tree: str,
    baseline: str | None,
    start: float,
    end: float,
    *,
    check: bool = False,
    protected: bool = False,
    ref: str | None = "",
    header: RunHeader | None = None,
) -> str:
    """Write the run commit and its ref (``ref=None``: the commit only); returns its sha.
    A continued run (``header.previous``) gets a commit whose parent is its previous one,
    and its ref moves there by compare-and-swap: a fast-forward.

    Nothing is written while a ``git gc`` runs (it could prune the new objects, and an
    unkept snapshot, before the ref reaches them): the commit waits for that gc to end.
    ``check`` (a gc was seen during the run, or this is a recovery) makes sure the snapshot
    is whole first: one that lost objects is replaced by the baseline's tree, with a
    warning. A gc that starts while the commit is written is waited for too, and the commit
    is checked and repaired after it (the window git documents for ``--prune=now``); so is
    one that started and ended while the commit was written (its prune leaves objects of the
    commit missing: a stat of each written object tells).
    """
    gc_pid = protect.gc_running(repo.common_dir)
    if gc_pid is not None:
        protect.wait_for_gc(repo.common_dir, gc_pid)
        check = check or not protected
    writer = ObjectWriter(repo.objects_dir)
    if ref is not None:
        ref = fmt.run_ref(record.id)
    if check and baseline is not None and not protect.has_object(repo, baseline):
        record = _lost_baseline(record, baseline)
        baseline = None
    if check and protect.missing_objects(repo, tree):
        gitcommit.forget_tree(tree)
        record, tree = _lost_snapshot(record, tree), _fallback_tree(repo, writer, baseline)
    files = record.to_files()
    try:
        root = gitcommit.compose_tree(repo, writer, tree, fmt.RECORD_DIR, files)
    except ObjectMissingError:
        gitcommit.forget_tree(tree)
        record, tree = _lost_snapshot(record, tree), _fallback_tree(repo, writer, baseline)
        files = record.to_files()
        root = gitcommit.compose_tree(repo, writer, tree, fmt.RECORD_DIR, files)
    previous = header.previous if header is not None else None
    parent = previous or baseline
    if ref is None:
        commit = gitcommit.build_commit(repo, root, parent, commit_message(record), start, end)
        return writer.add(commit).decode()
    sha = gitcommit.write_run_commit(
        repo,
        ref,
        root,
        parent,
        commit_message(record),
        start,
        end,
        writer,
        move=previous is not None,
        expected=header.ref_expected if header is not None else None,
        before_ref=None if previous is None else _carry_annotations(repo, record.id, previous),
    )
    # A gc running now may still prune what it decided was unreachable before the ref; one
    # that started after the check above and has ended already left its mark: objects of
    # this commit that are no longer loose (pruned, or packed). Either way, settle.
    gc_pid = protect.gc_running(repo.common_dir)
    if gc_pid is not None or writer.not_loose():
        sha = _settle(repo, writer, record, sha, tree, parent, start, end, gc_pid)
    repack.maybe_repack(repo)  # a thousand runs' loose objects: pack them
    return sha


def _settle(
    repo: GitRepo,
    writer: ObjectWriter,
    record: RunRecord,
    sha: str,
    tree: str,
    baseline: str | None,
    start: float,
    end: float,
    gc_pid: int | None,
) -> str:
    """After a ``git gc`` that ran while the run committed (``gc_pid``: still running, to be
    waited for): write again what it pruned."""
    if gc_pid is not None:
        protect.wait_for_gc(repo.common_dir, gc_pid)
    writer.rewrite(protect.missing_among(repo, list(writer.objects)))
    if not protect.missing_objects(repo, sha):
        return sha
    gitcommit.forget_tree(tree)  # the snapshot itself went: record on the baseline's tree
    record = _lost_snapshot(record, tree)
    fallback = _fallback_tree(repo, writer, baseline)
    root = gitcommit.compose_tree(repo, writer, fallback, fmt.RECORD_DIR, record.to_files())
    commit = gitcommit.build_commit(repo, root, baseline, commit_message(record), start, end)
    writer.add(commit)
    new = commit.id.decode()
    update_ref(repo.common_dir, fmt.run_ref(record.id), new, sha)
    return new


def _carry_annotations(repo: GitRepo, run_id: str, previous: str) -> Callable[[str], None]:
    """Annotations are git notes on a commit (docs/format.md, section 12): a continued run's
    new commit gets every event line of its previous commit, from every notes ref this clone
    reads (once each, in order), so tags, notes and moves made after it ended stay with it.
    Copying never stops the run's commit: if git fails here, the lines are still on the
    previous commit (``git log --notes=xp`` shows them) and the run lands without them."""

    def carry(new: str) -> None:
        with contextlib.suppress(XPError):
            _copy_notes(repo, run_id, previous, new)

    return carry


def _copy_notes(repo: GitRepo, run_id: str, previous: str, new: str) -> None:
    from xp.gitstore import notes
    from xp.record import annotations

    lines: set[str] = set()
    for _ref, tip in sorted(notes.tips(repo).items()):
        if not notes.is_commit(repo, tip):
            continue  # not a notes commit: readers ignore it too
        data = notes.read(repo, tip, [previous], annotations.MAX_NOTE_BYTES).get(previous)
        if data:
            lines.update(ln for ln in annotations.lines_of(data) if ln.strip())
    if lines:
        notes.append(
            repo,
            commit=new,
            lines=sorted(lines),
            message=f"xp: annotations carried to run {run_id}'s new commit\n\nxp-run: {run_id}\n",
            max_bytes=annotations.MAX_NOTE_BYTES,
        )


def say_skipped(skipped: Sequence[tuple[str, int]], limit: int) -> None:
    """Say on stderr which files the snapshot left out: a script's run has no caller that
    would print it, and a warning only inside meta.yaml is one nobody reads (a third
    exception to "the library never prints", with the flusher and the at-exit handler)."""
    for path, size in skipped:
        sys.stderr.write(
            f"xp: warning: {path} is {human_size(size)}, over max_file_size"
            f" ({human_size(limit)} in {fmt.CONFIG_PATH}): it is not in the run's snapshot;"
            f" log it as an artifact (xp.log_artifact({path!r}) or"
            f" `xp commit --artifact {path}`), or raise max_file_size\n"
        )
