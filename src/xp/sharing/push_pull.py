"""``xp push`` / ``xp pull``: run refs move with the git CLI, artifact objects with a store.

Push uploads the missing objects first and sends the refs after, so anyone who can see a run
can fetch its files (git-lfs orders its pre-push hook the same way). Pull fetches into
``refs/xp/remotes/<remote>/runs/`` only: a fetch can add or move those copies but never
touches ``refs/xp/runs/``, so a run that was never pushed cannot be lost by pulling.
``upload_missing`` is the one entry point the pre-push hook shares with ``xp push``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from xp import format as fmt
from xp.artifacts import cache, manifests
from xp.artifacts.artifact_store import ArtifactStore, open_store
from xp.artifacts.manifests import Needed
from xp.artifacts.transfer import Advance, Progress, TransferResult, transfer
from xp.errors import GitError, GitRemoteNotFoundError, RemoteError
from xp.format import RunRef
from xp.gitstore import remote as git_remote
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo


@dataclass
class UploadResult:
    store: str | None = None  # the artifact remote used; None when nothing needed one
    objects: int = 0  # sent
    bytes: int = 0
    present: int = 0  # already on the remote
    not_cached: list[Needed] = field(default_factory=list)  # inputs logged without cache=True


@dataclass
class DownloadResult:
    store: str | None = None
    objects: int = 0
    bytes: int = 0
    absent: list[Needed] = field(default_factory=list)  # on no store at all


@dataclass
class PushResult:
    git_remote: str
    pushed: list[str] = field(default_factory=list)  # run ids sent now
    chains: int = 0  # monitoring chains sent now (docs/models-in-production.md)
    annotations: bool = False  # refs/notes/xp sent now (docs/annotations.md)
    up_to_date: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (ref, git's reason)
    upload: UploadResult = field(default_factory=UploadResult)
    migrated: int = 0  # format-1 per-run refs the push folded into the remote's catalog


@dataclass
class PullResult:
    git_remote: str
    new: list[str] = field(default_factory=list)  # run ids fetched for the first time
    updated: list[str] = field(default_factory=list)
    total: int = 0  # runs the remote has
    download: DownloadResult | None = None
    chains: int = 0  # other clones' monitoring chains fetched or moved
    annotations: str = ""  # how the remote's annotations merged into ours (empty: it has none)
    skipped: list[str] = field(default_factory=list)  # catalog entries not taken, and why


# -- which commits, which objects -----------------------------------------------------------


def run_labels(repo: GitRepo, commits: Iterable[str]) -> dict[str, str]:
    """commit -> run id where a run ref points at it, else the short commit id."""
    from xp.gitstore import catalog

    by_commit: dict[str, str] = {}
    refs = list_refs(repo.common_dir, "refs/xp/")
    refs.update(catalog.remote_runs(repo))
    for name, sha in refs.items():
        ref = RunRef.parse(name)
        if ref is not None:
            by_commit.setdefault(sha, ref.id)
    return {c: by_commit.get(c, c[:12]) for c in commits}


def expand_dirs(items: list[Needed], cache_dir_: Path) -> tuple[list[Needed], list[Needed]]:
    """Folder inputs -> their manifest plus every file it lists (when the manifest is here)."""
    out, unknown = [], []
    for item in items:
        if item.kind != "input-dir":
            out.append(item)
            continue
        out.append(Needed(item.run, item.path, item.sha256, 0, "input"))
        path = cache.object_path(cache_dir_, item.sha256)
        if not path.is_file():
            unknown.append(item)
            continue
        source = f"run {item.run}: manifest of {item.path}"
        for entry in cache.parse_manifest(path.read_bytes(), source):
            out.append(
                Needed(item.run, f"{item.path}/{entry.path}", entry.sha256, entry.size, "input")
            )
    return out, unknown


def _unique(items: list[Needed]) -> dict[str, Needed]:
    """sha256 -> the first entry naming it; artifacts win over inputs (they must exist)."""
    out: dict[str, Needed] = {}
    for item in sorted(items, key=lambda i: i.kind != "artifact"):
        out.setdefault(item.sha256, item)
    return out


def lost_message(item: Needed, store: str | None) -> str:
    where = f"the local cache nor artifact remote {store!r}" if store else "the local cache"
    return (
        f"run {item.run}: {item.path} (sha256 {item.sha256}) is in neither {where};"
        " push it from the clone that logged the run (`xp push`)"
    )


# Objects an upload to a folder store fsyncs one by one; more are made durable by one
# syncfs after the upload (``ArtifactStore.settle``), which also flushes whatever else is
# waiting on that disk: a hook's push of a run or two must not wait for that.
FSYNC_EACH = 16


def upload_missing(
    repo: GitRepo,
    *,
    commits: Iterable[str],
    store: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    publishing: Iterable[str] | None = None,
    labels: dict[str, str] | None = None,
    stop: threading.Event | None = None,
) -> UploadResult:
    """Upload the artifacts (and cached inputs) of ``commits`` the artifact remote lacks.

    ``publishing``: the commits whose refs the push is about to create or move on the git
    remote (default: all of ``commits``, as the pre-push hook sends). Their objects are
    checked on the store itself, never taken from what earlier pushes remembered.
    Raises RemoteError naming run, path and hash when an artifact is on no store at all;
    nothing is uploaded then. Commits without a run record need nothing and are fine.
    Commits whose objects an earlier push saw all on the remote are not looked at again;
    ``labels`` (commit -> run id) saves listing the refs when the caller has them.
    ``stop`` set from another thread starts no more objects (``transfer``).
    """
    commits = list(commits)
    fresh = set(commits if publishing is None else publishing)
    try:
        target: ArtifactStore | None = open_store(repo, store)
    except RemoteError:
        target = None  # no artifact remote: fine as long as nothing needs one
    result = UploadResult()
    seen: set[str] = set()  # objects of commits a push completed before: on the remote
    if target is not None:
        # a run about to be published is checked on the store itself, whatever was done;
        # and then a sample of what earlier pushes saw, as ``missing_for_upload`` does
        done = {c: shas for c, shas in target.done_commits().items() if c not in fresh}
        seen = {sha for c in commits if c in done for sha in done[c]}
        if seen and fresh.intersection(commits) and not target.still_there(seen):
            done, seen = {}, set()  # the store lost objects: every run is looked at again
        commits = [c for c in commits if c not in done]
        if seen:
            result.store, result.present = target.spec.name, len(seen)
    if not commits:
        return result
    if labels is None:
        labels = run_labels(repo, commits)
    else:
        labels = {c: labels.get(c, c[:12]) for c in commits}
    cache_dir = cache.cache_dir(repo)
    items, unknown_dirs = expand_dirs(manifests.needed(repo, labels), cache_dir)
    unsure = {item.run for item in unknown_dirs}  # a folder input whose files are not known
    by_label: dict[str, list[str]] = {}
    for item in items:
        by_label.setdefault(item.run, []).append(item.sha256)
    objects = {
        c: sorted(set(by_label.get(labels[c], []))) for c in commits if labels[c] not in unsure
    }
    if not items:
        if target is not None:
            target.remember_commits(objects)
        return result
    if target is None:
        target = open_store(repo, store)  # raises: no artifact remote, and how to add one
    result.store = target.spec.name
    fresh_runs = {labels[c] for c in fresh if c in labels}
    recheck = {i.sha256 for i in items if i.run in fresh_runs}
    wanted = {
        sha: item for sha, item in _unique(items).items() if sha not in seen or sha in recheck
    }
    missing = target.missing_for_upload(wanted, recheck)
    result.present = len(seen - wanted.keys()) + len(wanted) - len(missing)
    send: list[tuple[str, int]] = []
    for sha in sorted(missing):
        item = wanted[sha]
        path = cache.object_path(cache_dir, sha)
        if path.is_file():
            send.append((sha, path.stat().st_size))
        elif item.kind == "artifact":
            raise RemoteError(lost_message(item, target.spec.name))
        else:
            result.not_cached.append(item)

    def upload(sha: str, _size: int, advance: Advance) -> int:
        size = target.upload(cache.object_path(cache_dir, sha), sha, advance)
        target.remember([sha])
        return size

    target.fsync_each = len(send) <= FSYNC_EACH  # else one syncfs after (``settle``)
    done_now = transfer(send, upload, jobs or target.upload_jobs, progress, stop)
    result.objects, result.bytes = done_now.objects, done_now.bytes
    if stop is not None and stop.is_set() and done_now.objects < len(send):
        raise RemoteError("the artifact upload was stopped; run the push again")
    if done_now.objects:
        target.settle()  # durable before any ref names them, and before they are remembered
    unsent = {item.run for item in result.not_cached}  # inputs logged without cache=True
    target.remember_commits({c: objs for c, objs in objects.items() if labels[c] not in unsent})
    return result


def download_missing(
    repo: GitRepo,
    *,
    items: list[Needed],
    store: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    target: ArtifactStore | None = None,
) -> DownloadResult:
    """Fetch the objects of ``items`` the local cache lacks, re-hashing each one."""
    cache_dir = cache.cache_dir(repo)
    result = DownloadResult()
    local_missing = {
        sha: item
        for sha, item in _unique(items).items()
        if not cache.object_path(cache_dir, sha).is_file()
    }
    if not local_missing:
        return result
    if target is None:
        try:
            target = open_store(repo, store)
        except RemoteError:
            if store is not None:
                raise
            result.absent = sorted(local_missing.values(), key=lambda i: (i.run, i.path))
            return result
    result.store = target.spec.name
    gone = target.missing(local_missing)
    result.absent = sorted((local_missing[s] for s in gone), key=lambda i: (i.run, i.path))
    todo = [(s, i.size) for s, i in local_missing.items() if s not in gone]
    done: TransferResult = transfer(
        todo,
        lambda sha, size, advance: target.download(sha, cache_dir, size, advance),
        jobs or target.spec.jobs,
        progress,
    )
    result.objects, result.bytes = done.objects, done.bytes
    return result


def fetch_objects(
    repo: GitRepo,
    *,
    commits: Iterable[str],
    store: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> DownloadResult:
    """Everything ``commits`` refer to, into the local cache; folder inputs in two rounds."""
    labels = run_labels(repo, commits)
    cache_dir = cache.cache_dir(repo)
    items = manifests.needed(repo, labels)
    target = None
    first = download_missing(
        repo, items=expand_dirs(items, cache_dir)[0], store=store, jobs=jobs, progress=progress
    )
    if first.store is None and any(i.kind == "artifact" for i in first.absent):
        open_store(repo, store)  # raises: no artifact remote is configured, and how to add one
    if any(i.kind == "input-dir" for i in items) and first.store:
        target = open_store(repo, first.store)
        again = download_missing(
            repo,
            items=expand_dirs(items, cache_dir)[0],
            store=store,
            jobs=jobs,
            progress=progress,
            target=target,
        )
        first.objects += again.objects
        first.bytes += again.bytes
        first.absent = again.absent
    return first


# -- git refs ------------------------------------------------------------------------------


PUSHING_RUNS_ENV = "XP_PUSHING_RUNS"  # set on xp's own pushes of runs: the pre-push hook rests
# The environment of xp's own pushes of runs: the pre-push hook rests, and XP_SKIP_PUSH lets
# its shell shim exit before it starts Python (0.1-0.2 s of every push; a hook the shim
# keeps as pre-push.legacy still runs).
NESTED_PUSH_ENV = {PUSHING_RUNS_ENV: "1", "XP_SKIP_PUSH": "1"}


def pick_git_remote(repo: GitRepo, name: str | None) -> str:
    """``name`` if the repository has that git remote; else origin, or the only remote."""
    remotes = git_remote.names(repo)
    listed = ", ".join(remotes) or "none"
    if name is not None:
        if name not in remotes:
            raise GitRemoteNotFoundError(
                f"no git remote {name!r} (remotes: {listed}); add it with"
                f" `git remote add {name} URL`"
            )
        return name
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return remotes[0]
    raise GitRemoteNotFoundError(
        "no git remote to use"
        + (f" (remotes: {listed}): name one" if remotes else "")
        + "; add one with `git remote add origin URL`" * (not remotes)
    )


def _select_runs(repo: GitRepo, specs: list[str] | None) -> dict[RunRef, str]:
    """run ref -> commit: the named runs (local or fetched), or every local run."""
    from xp.query.resolve import resolve_run

    if not specs:
        local = list_refs(repo.common_dir, RunRef.prefix()).items()
        return {ref: sha for name, sha in local if (ref := RunRef.parse(name)) is not None}
    out: dict[RunRef, str] = {}
    for spec in specs:
        entry = resolve_run(repo, spec)
        out[entry.run_ref] = entry.commit
    return out


def _unpublished(
    repo: GitRepo, remote: str, selected: dict[RunRef, str], catalog_layout: bool = False
) -> list[str]:
    """Commits of the selected runs that the git remote does not show yet (one ls-remote,
    or the fetched catalog buckets they fall in); all of them when it cannot be asked (the
    push itself then says what is wrong)."""
    if catalog_layout:
        from xp.gitstore import catalog

        listed = catalog.listed(repo, remote, [r.id for r in selected])
        return sorted({c for ref, c in selected.items() if listed.get(ref.id) != c})
    try:
        there = git_remote.ls_remote(repo, remote, f"{RunRef.prefix()}*")
    except GitError:
        there = {}
    return sorted({c for ref, c in selected.items() if there.get(str(ref.local)) != c})


def push_refs(repo: GitRepo, remote: str, refspecs: list[str], result: PushResult) -> None:
    """Push ``refspecs``, counting each destination ref as pushed, up to date or rejected."""
    # xp push uploads the artifacts itself: the pre-push hook need not look again.
    for row in git_remote.push(repo, remote, refspecs, env=NESTED_PUSH_ENV):
        if row.up_to_date:
            result.up_to_date += 1
        elif row.rejected:
            result.rejected.append((row.ref, row.reason))
        elif row.ref.startswith(fmt.MONITORING_PREFIX):
            result.chains += 1
        elif row.ref == fmt.NOTES_REF:
            result.annotations = True
        else:
            parsed = RunRef.parse(row.ref)
            result.pushed.append(parsed.id if parsed else row.ref)


def push_annotations(repo: GitRepo, remote: str, result: PushResult) -> None:
    """Send ``refs/notes/xp``, ours merged with the remote's first: when the remote moved on
    since our last fetch, fetch its notes, merge them (``cat_sort_uniq``) and push again."""
    from xp.sharing.annotate import merge_fetched
    from xp.sharing.project_setup import notes_fetch_spec

    merge_fetched(repo)
    if read_ref(repo.common_dir, fmt.NOTES_REF) is None:
        return
    spec = f"{fmt.NOTES_REF}:{fmt.NOTES_REF}"
    for attempt in range(2):
        rows = git_remote.push(repo, remote, [spec])
        if not any(r.rejected for r in rows) or attempt:
            for row in rows:
                if row.rejected:
                    result.rejected.append((row.ref, row.reason))
                elif not row.up_to_date:
                    result.annotations = True
            return
        git_remote.fetch(repo, remote, [notes_fetch_spec(remote)])
        merge_fetched(repo)


class _Upload:
    """``xp push``'s artifact upload and the packing of its runs: in a thread when
    ``background`` (``publish`` builds the buckets meanwhile), else at once. ``finish`` waits
    for both (the upload's error raised there); ``cancel`` stops whatever is still running
    (a failed or interrupted push: objects in flight finish, no more start)."""

    def __init__(
        self,
        work: Callable[[threading.Event], UploadResult],
        packing: git_remote.Packing | None,
        *,
        background: bool,
    ) -> None:
        self.stop = threading.Event()
        self.packing = packing
        self.result: UploadResult | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if background:
            self.thread = threading.Thread(
                target=self._run, args=(work,), name="xp-upload", daemon=True
            )
            self.thread.start()
        else:
            self._run(work)

    def _run(self, work: Callable[[threading.Event], UploadResult]) -> None:
        try:
            self.result = work(self.stop)
        except BaseException as exc:  # raised in the caller's thread by finish
            self.error = exc

    def finish(self) -> UploadResult:
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            self.cancel()
            raise self.error
        if self.packing is not None:
            self.packing.wait()
            self.packing = None
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        self.stop.set()
        if self.packing is not None:
            self.packing.stop()
            self.packing = None
        if self.thread is not None:
            self.thread.join()


def push(
    repo: GitRepo,
    *,
    remote: str | None = None,
    runs: list[str] | None = None,
    store: str | None = None,
    artifacts: bool = True,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> PushResult:
    """Upload the selected runs' missing objects, then push their refs (all local runs, and
    this clone's monitoring points, when no run is named)."""
    from xp.sharing.catalog import publish, uses_catalog

    name = pick_git_remote(repo, remote)
    selected = _select_runs(repo, runs)
    result = PushResult(name)
    catalog_layout = uses_catalog(repo)
    chains = [] if runs else list(list_refs(repo.common_dir, fmt.MONITORING_PREFIX))
    if chains and not selected:
        push_refs(repo, name, [f"{fmt.MONITORING_PREFIX}*:{fmt.MONITORING_PREFIX}*"], result)
    push_annotations(repo, name, result)
    if not selected:
        if catalog_layout and not runs:  # a format-1 remote is migrated even so
            result.migrated = publish(repo, remote=name).migrated
        return result
    upload: _Upload | None = None
    if artifacts:
        commits = sorted(set(selected.values()))
        labels = {commit: ref.id for ref, commit in selected.items()}
        publishing = _unpublished(repo, name, selected, catalog_layout)
        # The runs' objects are packed while the artifacts upload (a second core's work),
        # and the catalog's bucket commits are built meanwhile too (``publish``'s
        # ``ready``): the refs still move only after every artifact is on the store.
        packing = git_remote.start_packing(repo, name, publishing)
        upload = _Upload(
            lambda stop: upload_missing(
                repo,
                commits=commits,
                store=store,
                jobs=jobs,
                progress=progress,
                publishing=publishing,
                labels=labels,
                stop=stop,
            ),
            packing,
            background=catalog_layout,
        )
    try:
        if catalog_layout:

            def ready() -> None:
                if upload is not None:
                    result.upload = upload.finish()
                if chains:
                    push_refs(
                        repo, name, [f"{fmt.MONITORING_PREFIX}*:{fmt.MONITORING_PREFIX}*"], result
                    )

            runs_ = {r.id: c for r, c in selected.items()}
            published = publish(repo, remote=name, runs=runs_, ready=ready)
            result.pushed += published.pushed
            result.up_to_date += published.up_to_date
            result.rejected += published.rejected
            result.migrated = published.migrated
            return result
        if upload is not None:
            result.upload = upload.finish()
    finally:
        if upload is not None:
            upload.cancel()
    if runs:
        refspecs = [f"{ref}:{ref.local}" for ref in sorted(selected)]
    else:
        refspecs = [f"{RunRef.prefix()}*:{RunRef.prefix()}*"]
        if chains:
            refspecs.append(f"{fmt.MONITORING_PREFIX}*:{fmt.MONITORING_PREFIX}*")
    push_refs(repo, name, refspecs, result)
    return result


def _remote_copies(repo: GitRepo, remote: str) -> tuple[dict[str, str], list[str]]:
    """The runs fetched from ``remote``: its format-1 copies and its catalog's entries (which
    win: after a migration the per-run copies left here are stale); and what was skipped."""
    from xp.gitstore import catalog

    copies = list_refs(repo.common_dir, RunRef.prefix(remote))
    tips = {
        n: s
        for n, s in catalog.tracking_buckets(repo.common_dir).items()
        if catalog.split_tracking(n)[0] == remote
    }
    listed, skipped = catalog.listing(repo, tips)
    copies.update(listed)
    return copies, skipped


def pull(
    repo: GitRepo,
    *,
    remote: str | None = None,
    artifacts: bool = False,
    store: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch the remote's runs into refs/xp/remotes/<remote>/runs/ (and its monitoring chains
    into refs/xp/remotes/<remote>/monitoring/); objects with ``artifacts``."""
    name = pick_git_remote(repo, remote)
    prefix = RunRef.prefix(name)
    watched = fmt.monitoring_prefix(name)
    before, _skipped = _remote_copies(repo, name)
    chains_before = list_refs(repo.common_dir, watched)
    from xp.sharing.annotate import merge_fetched
    from xp.sharing.project_setup import catalog_fetch_spec, notes_fetch_spec

    git_remote.fetch(
        repo,
        name,
        [
            f"+{RunRef.prefix()}*:{prefix}*",
            catalog_fetch_spec(name),
            f"+{fmt.MONITORING_PREFIX}*:{watched}*",
            notes_fetch_spec(name),
        ],
    )
    after, skipped = _remote_copies(repo, name)
    result = PullResult(name, total=len(after), skipped=skipped)
    merged = [m for m in merge_fetched(repo) if m.ref == fmt.notes_ref(name)]
    result.annotations = merged[0].outcome if merged else ""
    chains_after = list_refs(repo.common_dir, watched)
    result.chains = sum(chains_before.get(k) != v for k, v in chains_after.items())
    for name, sha in sorted(after.items()):
        run_id = name[len(prefix) :]
        if name not in before:
            result.new.append(run_id)
        elif before[name] != sha:
            result.updated.append(run_id)
    if artifacts and after:
        result.download = fetch_objects(
            repo, commits=sorted(set(after.values())), store=store, jobs=jobs, progress=progress
        )
    return result
