"""Publishing runs in a git remote's catalog (format 2; ``gitstore/catalog`` has the layout).

``publish`` is the one writer: ``xp push``, the pre-push hook and ``xp rm --remote`` call it.
For each bucket it touches it builds a new bucket commit on top of the remote's tip (the
remote's entries plus the runs that are new or moved forward, minus the runs removed), then
pushes every touched bucket in one atomic compare-and-swap push. Another writer racing into
the same bucket makes that push stale; xp then reads the remote again, rebuilds and retries
with jittered backoff, so a user never sees a race. A run only moves forward: a catalog entry
that is not an ancestor of the local tip refuses that run, as git refuses a non-fast-forward.

A remote that still holds format-1 per-run refs (``refs/xp/runs/<id>``) is migrated by the
same push (``migrate_remote`` is the same thing with no runs of ours): those runs join their
buckets and the per-run refs are deleted in the same atomic push.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xp import format as fmt
from xp.config import load_config
from xp.errors import RefRejectedError, StorageError
from xp.gitstore import catalog
from xp.gitstore import remote as git_remote
from xp.gitstore.refs import delete_refs, list_refs, read_ref, update_ref
from xp.gitstore.repo import GitRepo

if TYPE_CHECKING:
    from xp.query.index.rows import Stored

_NOTHING = "refs/xp/migrating-from-nothing/"  # never holds a ref: pruning from it deletes all
TRIES = 8  # pushes before a race is reported (each after a jittered, growing wait)
_RACE_WORDS = (
    "stale info",
    "fetch first",
    "non-fast-forward",
    "atomic",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
    "failed to lock",
)


def uses_catalog(repo: GitRepo) -> bool:
    """Whether this project publishes runs in the catalog (``format: 2`` or later)."""
    return load_config(repo).format >= fmt.CATALOG_FORMAT


@dataclass
class Published:
    remote: str
    pushed: list[str] = field(default_factory=list)  # run ids added or moved on the remote
    removed: list[str] = field(default_factory=list)  # run ids the remote no longer lists
    up_to_date: int = 0
    migrated: int = 0  # format-1 per-run refs folded into the catalog and deleted
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (run ref, why)
    tries: int = 0  # pushes made (more than 1: another writer raced us)


def _fetch_buckets(repo: GitRepo, remote: str, buckets: Iterable[str], old: bool) -> None:
    specs = [
        f"+{catalog.bucket_ref(b)}:{catalog.bucket_ref(b, remote)}" for b in sorted(set(buckets))
    ]
    if old:  # format-1 runs: their objects, to list them in buckets
        specs.append(f"+{fmt.RUNS_PREFIX}*:{fmt.RunRef.prefix(remote)}*")
    if specs:
        git_remote.fetch(repo, remote, specs)


def _old_summaries(repo: GitRepo, reads: Iterable[catalog.Bucket | None]) -> dict[str, bytes]:
    """The run summaries of the buckets read (sha -> content): one ``cat-file`` round for
    every bucket the push touches, not one per bucket."""
    return catalog.read_summaries(repo, [r.summary for r in reads if r is not None and r.summary])


def _carried_summary(
    entries: Mapping[str, str], read: catalog.Bucket | None, old: bytes | None
) -> bytes:
    """The pre-push hook's run summary (no record parser in every `git push`): ``old``'s
    lines (the bucket's summary before) minus those of runs added, moved or removed,
    unparsed: readers read the runs without a line from their records."""
    if old is None or not old.startswith(catalog.SUMMARY_HEADER):
        return catalog.SUMMARY_HEADER
    before = read.entries if read is not None else {}
    return catalog.without_runs(old, [i for i, s in before.items() if entries.get(i) != s])


def _known_rows(entries: Mapping[str, str], old: bytes | None) -> dict[str, Stored]:
    """The lines of ``old`` (a bucket's summary) that still describe an entry, checked as
    any fetched summary is."""
    if old is None:
        return {}
    from xp.query.index import summary as run_summary

    return run_summary.decode(old, entries).items


def _fresh_rows(repo: GitRepo, missing: list[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
    """Index rows read from the records of ``missing`` (run id, tip), for every bucket a
    push writes at once: two ``cat-file`` rounds, not two per bucket. Error rows are left
    out (readers read those runs from their records)."""
    from xp.query.index.rows import iter_rows

    out: dict[tuple[str, str], Stored] = {}
    while missing:  # one pass per run id sharing a commit with another (rare)
        wanted: dict[str, str] = {}
        later = [(i, sha) for i, sha in missing if wanted.setdefault(sha, i) != i]
        for item in iter_rows(repo, wanted):
            if item.error is None:
                out[(item.run_id, item.commit)] = item
        missing = later
    return out


@dataclass
class _Write:
    """A bucket commit one publish round writes."""

    bucket: str
    ref: str
    base: str | None  # the remote's tip, leased
    start: str | None  # the new commit's base (None: a new root)
    carry: set[str]  # run tips it keeps reachable
    message: str
    entries: dict[str, str]  # run id -> tip
    read: catalog.Bucket | None  # the remote's bucket as read


def _summaries(repo: GitRepo, writes: list[_Write], summarize: bool) -> dict[str, bytes]:
    """Each bucket's new run summary (bucket -> blob), what they need read for all of them
    at once (a ``cat-file`` process per bucket made a push of 1,000 runs spawn ~1,000): the
    lines of the remote's summary that still describe an entry, plus rows read from the
    records of the rest (runs added or moved, or a bucket an older writer left without a
    summary); without ``summarize``, ``_carried_summary``."""
    if not writes:  # a push with nothing to publish loads no record reader
        return {}
    olds = _old_summaries(repo, [w.read for w in writes])
    prior = {
        w.bucket: olds.get(w.read.summary) if w.read is not None and w.read.summary else None
        for w in writes
    }
    if not summarize:
        return {w.bucket: _carried_summary(w.entries, w.read, prior[w.bucket]) for w in writes}
    from xp.query.index import summary as run_summary

    known: dict[str, dict[str, Stored]] = {}
    missing: dict[str, list[tuple[str, str]]] = {}
    for w in writes:
        known[w.bucket] = _known_rows(w.entries, prior[w.bucket])
        have = {item.run_id for item in known[w.bucket].values()}
        missing[w.bucket] = [(i, sha) for i, sha in w.entries.items() if i not in have]
    rows = _fresh_rows(repo, [pair for pairs in missing.values() for pair in pairs])
    out: dict[str, bytes] = {}
    for bucket, pairs in missing.items():
        fresh = [row for pair in pairs if (row := rows.get(pair)) is not None]
        out[bucket] = run_summary.encode([*known[bucket].values(), *fresh])
    return out


def _is_race(reason: str) -> bool:
    return any(word in reason for word in _RACE_WORDS)


def publish(
    repo: GitRepo,
    *,
    remote: str,
    runs: Mapping[str, str] | None = None,
    remove: Iterable[str] = (),
    migrate: bool = True,
    tries: int = TRIES,
    summarize: bool = True,
    ready: Callable[[], None] | None = None,
) -> Published:
    """List ``runs`` (run id -> tip) in ``remote``'s catalog and drop ``remove`` from it,
    folding the remote's format-1 per-run refs in (``migrate``); retried on races. Each
    bucket written carries its run summary, with lines for the runs added when
    ``summarize`` (``_summary``).

    ``ready()`` is called once, after the first round has read the remote and written its
    bucket commits (local objects no ref names yet) and before anything is pushed: ``xp
    push`` waits there for its artifact upload, so building the buckets overlaps it and a
    ref still moves only once every artifact is on the store. When it raises, nothing is
    pushed."""
    runs = dict(runs or {})
    removing = set(remove)
    result = Published(remote)
    for attempt in range(tries):
        result = Published(remote, tries=attempt + 1)
        done = _attempt(repo, remote, runs, removing, migrate, result, summarize, ready)
        ready = None  # called by the first round; later rounds push at once
        if done:
            return result
        time.sleep(random.uniform(0.05, 0.1) * 2 ** min(attempt, 5))
    ref, why = result.rejected[0] if result.rejected else ("the catalog", "kept changing")
    raise RefRejectedError(
        f"git remote {remote!r} kept changing {ref} during {tries} tries ({why});"
        " push again in a moment"
    )


def migrate_remote(repo: GitRepo, *, remote: str) -> Published:
    """Fold a remote's format-1 per-run refs into its catalog (deleting them, atomically)."""
    return publish(repo, remote=remote, migrate=True)


def _attempt(
    repo: GitRepo,
    remote: str,
    runs: dict[str, str],
    removing: set[str],
    migrate: bool,
    result: Published,
    summarize: bool = True,
    ready: Callable[[], None] | None = None,
) -> bool:
    """One read-build-push round; False when a racing writer made the push stale.
    ``ready()`` (``publish``) runs between building and pushing."""
    patterns = [f"{fmt.CATALOG_PREFIX}*"] + ([f"{fmt.RUNS_PREFIX}*"] if migrate or removing else [])
    there = git_remote.ls_remote(repo, remote, *patterns)
    server = {
        name[len(fmt.CATALOG_PREFIX) :]: sha
        for name, sha in there.items()
        if name.startswith(fmt.CATALOG_PREFIX)
    }
    old = {
        name[len(fmt.RUNS_PREFIX) :]: sha
        for name, sha in there.items()
        if name.startswith(fmt.RUNS_PREFIX) and fmt.is_run_id(name[len(fmt.RUNS_PREFIX) :])
    }
    if not migrate:  # only the per-run refs of runs being removed
        old = {i: s for i, s in old.items() if i in removing}
    touched = {fmt.bucket_of(i) for i in [*runs, *removing, *old]}
    common = repo.common_dir
    stale = [
        b
        for b in touched
        if b in server and read_ref(common, catalog.bucket_ref(b, remote)) != server[b]
    ]
    if stale or old:
        _fetch_buckets(repo, remote, stale, bool(old))
    reads = catalog.read_buckets(
        repo, {catalog.bucket_ref(b): server[b] for b in touched if b in server}
    )
    refspecs: list[str] = []
    tips: dict[str, str] = {}  # bucket ref -> its new tip
    leases: dict[str, str | None] = {}
    new_tips: dict[str, str | None] = {}  # bucket -> its new tip (None: deleted)
    by_bucket: dict[str, tuple[dict[str, str], dict[str, str], list[str]]] = {
        b: ({}, {}, []) for b in touched
    }
    for run_id, sha in runs.items():
        by_bucket[fmt.bucket_of(run_id)][0][run_id] = sha
    for run_id, sha in old.items():
        by_bucket[fmt.bucket_of(run_id)][1][run_id] = sha
    for run_id in removing:
        by_bucket[fmt.bucket_of(run_id)][2].append(run_id)
    writes: list[_Write] = []
    for bucket in sorted(touched):
        base = server.get(bucket)
        read = reads.get(catalog.bucket_ref(bucket))
        entries = dict(read.entries) if read is not None else {}
        added: list[str] = []
        mine, theirs, dropping = by_bucket[bucket]
        checks = [(entries[i], s) for i, s in {**theirs, **mine}.items() if i in entries]
        checks += [(s, entries[i]) for i, s in mine.items() if i in entries]
        forward = catalog.ancestors(repo, [(a, b) for a, b in checks if a != b])
        for run_id, sha in theirs.items():  # format-1 refs: the newer of the two wins
            have = entries.get(run_id)
            if have is None or (have, sha) in forward:
                entries[run_id] = sha
                added.append(sha)
        for run_id, sha in mine.items():
            have = entries.get(run_id)
            if have == sha or (have is not None and (sha, have) in forward):
                result.up_to_date += 1
            elif have is None or (have, sha) in forward:
                entries[run_id] = sha
                added.append(sha)
                result.pushed.append(run_id)
            else:
                result.rejected.append(
                    (
                        str(fmt.RunRef(run_id)),
                        "non-fast-forward: the remote's run is not an ancestor of yours",
                    )
                )
        gone = [i for i in dropping if i in entries]
        for run_id in gone:
            del entries[run_id]
        result.removed += gone
        if not migrate:  # a few runs being removed: each deletion leased on what was read
            for run_id in theirs:
                refspecs.append(f":{fmt.RunRef(run_id)}")
                leases[str(fmt.RunRef(run_id))] = old[run_id]
        result.migrated += len(set(theirs) - removing)
        if not added and not gone:
            continue
        ref = catalog.bucket_ref(bucket)
        if not entries:  # nothing left: the bucket goes (or was never there)
            if base:
                refspecs.append(f":{ref}")
                leases[ref] = base
                new_tips[bucket] = None
            continue
        if gone:  # a new root: the removed runs become unreachable on the remote
            start, carry = None, catalog.present(repo, entries.values())
            message = f"xp catalog {bucket}: -{len(gone)} runs"
        else:
            start, carry = base, set(added)
            message = f"xp catalog {bucket}: +{len(added)} runs"
        writes.append(_Write(bucket, ref, base, start, carry, message, entries, read))
    summaries = _summaries(repo, writes, summarize)
    dates = catalog.commit_dates(
        repo, [c for w in writes for c in [*w.carry, *([w.start] if w.start else [])]]
    )
    for w in writes:
        tip = catalog.write_bucket(
            repo,
            entries=w.entries,
            base=w.start,
            carry=w.carry,
            message=w.message,
            summary=summaries[w.bucket],
            dates=dates,
        )
        tips[w.ref] = tip
        leases[w.ref] = w.base
        new_tips[w.bucket] = tip
    prune = migrate and bool(old)
    if prune:
        # Every per-run ref goes in the same atomic push, by pruning from a namespace that is
        # empty here (one refspec per ref would cost git minutes at 100k refs). Each deletion
        # is checked against the value git's own ref listing showed just before it pushes; a
        # ref an older xp created after our read is deleted unread, and that xp pushes its
        # runs again with its next push (it sends every refs/xp/runs/*), to be folded in then.
        refspecs.append(f"{_NOTHING}*:{fmt.RUNS_PREFIX}*")
    if ready is not None:
        ready()
    if not refspecs and not tips:
        return True
    from xp.sharing.push_pull import NESTED_PUSH_ENV

    rows = git_remote.push(
        repo, remote, refspecs, env=NESTED_PUSH_ENV, leases=leases or None, prune=prune, tips=tips
    )
    refused = [r for r in rows if r.rejected]
    if refused:
        if all(_is_race(r.reason) for r in refused):
            result.rejected = [(r.ref, r.reason) for r in refused]
            return False
        real = next(r for r in refused if not _is_race(r.reason))
        raise RefRejectedError(
            f"git remote {remote!r} refused {real.ref}: {real.reason}; check the remote's"
            " rules for refs/xp/ (protected refs, hooks)"
        )
    for bucket, new in new_tips.items():
        name = catalog.bucket_ref(bucket, remote)
        current = read_ref(common, name)
        with contextlib.suppress(StorageError):  # a fetch moved it meanwhile: it knows
            if new is None and current is not None:
                delete_refs(common, {name: current})
            elif new is not None and current != new:
                update_ref(common, name, new, current)
    copies = list_refs(common, fmt.RunRef.prefix(remote))
    drop = {n: s for n, s in copies.items() if n.rpartition("/")[2] in old}
    if drop:
        with contextlib.suppress(StorageError):  # a fetch changed them: left for the next
            delete_refs(common, drop)  # the catalog lists them now
    return True
