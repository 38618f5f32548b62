"""``xp verify MODEL@STAGE|RUN``: the provenance chain from a deployed model's bytes back to
signed git objects, link by link.

    stage tag (signed)  ->  version tag (signed)  ->  run commit (signed)
        -> its code tree (every object re-hashed) -> the record's artifacts.yaml
        -> the artifact bytes in the cache (re-hashed against the recorded sha256)

A tag names its commit by hash, the commit its tree, the tree the record and its files, the
record each artifact by sha256: so one good signature per object and matching hashes all
the way down prove which code, data and settings produced the bytes. Each link says who
signed it; the first link that does not hold makes the whole verification fail, with its
reason. Nothing is fetched: what is not here cannot be verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xp import format as fmt
from xp.artifacts import cache
from xp.errors import GitError, InvalidValueError, ModelNotFoundError
from xp.gitstore import signing
from xp.gitstore.commit import tree_of
from xp.gitstore.repo import GitRepo
from xp.gitstore.trees import rehash_tree
from xp.query.resolve import read_record, resolve_run
from xp.sharing import registry


@dataclass(frozen=True)
class Link:
    kind: str  # stage tag, version tag, run commit, code tree, data input, artifact
    name: str  # the tag, commit, tree or path
    ok: bool
    detail: str  # who signed it / what was checked / why it fails


@dataclass
class Verification:
    spec: str
    links: list[Link] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.links) and all(link.ok for link in self.links)

    @property
    def broken(self) -> Link | None:
        return next((link for link in self.links if not link.ok), None)


def _run_id(message: str) -> str | None:
    for line in message.splitlines():
        if line.startswith("xp-run: "):
            return line[8:].strip()
    return None


def verify(repo: GitRepo, *, spec: str) -> Verification:
    """Check every link of ``spec``'s chain (a model version or stage, or a run)."""
    result = Verification(spec)
    if "@" in spec or "#" in spec:
        version = _model_links(repo, spec, result)
        commit, artifacts = version.commit, set(version.artifacts)
        expected_run = version.run_id
    else:
        entry = resolve_run(repo, spec)
        commit, artifacts, expected_run = entry.commit, None, entry.id
    _commit_links(repo, commit, expected_run, artifacts, result)
    return result


def _model_links(repo: GitRepo, spec: str, result: Verification) -> registry.Version:
    try:
        version = registry.resolve(repo, spec)
    except InvalidValueError:
        raise InvalidValueError(
            f"{spec!r} is neither a run nor NAME@STAGE / NAME@VERSION; e.g. churn@production"
        ) from None
    name, _, which = spec.replace("#", "@", 1).partition("@")
    if which not in ("latest", version.version, version.version.lstrip("v")):
        changes = registry.replay(repo).history.get((name, which), [])
        if not changes or changes[-1].version != version.version:
            raise ModelNotFoundError(f"no tag puts {name}@{version.version} in stage {which!r}")
        tag = changes[-1].tag
        sig = signing.tag_signature(repo, tag)
        result.links.append(Link("stage tag", tag, sig.good, sig.describe()))
    sig = signing.tag_signature(repo, version.tag)
    result.links.append(Link("version tag", version.tag, sig.good, sig.describe()))
    return version


def _commit_links(
    repo: GitRepo,
    commit: str,
    expected_run: str | None,
    artifacts: set[str] | None,
    result: Verification,
) -> None:
    from xp.gitstore.chains import commit_message

    sig = signing.commit_signature(repo, commit)
    run_id = _run_id(commit_message(repo, commit))
    detail = sig.describe()
    ok = sig.good
    if ok and expected_run and run_id != expected_run:
        ok, detail = False, f"the commit says it is run {run_id}, the tag says {expected_run}"
    result.links.append(Link("run commit", f"{run_id or '?'} {commit[:12]}", ok, detail))
    tree = tree_of(repo, commit)
    try:
        check = rehash_tree(repo, tree)
        bad = check.bad
        detail = (
            f"{check.objects} objects re-hashed"
            if not bad
            else f"{len(bad)} object(s) missing or changed: {', '.join(bad[:3])}"
        )
    except GitError as exc:
        bad, detail = ("?",), f"cannot read the tree: {exc}"
    result.links.append(Link("code tree", tree[:12], not bad, detail))
    record = read_record(repo, commit)
    if record is None:
        result.links.append(
            Link("record", fmt.RECORD_DIR, False, "the commit carries no run record")
        )
        return
    for entry in record.inputs:
        cached = cache.object_path(cache.cache_dir(repo), entry.sha256)
        if cached.is_file():
            good = cache.verify(cache.cache_dir(repo), entry.sha256)
            note = "cached bytes match" if good else "cached bytes do not match the sha256"
        else:
            good, note = True, "recorded (data not cached here: bytes not checked)"
        result.links.append(
            Link("data input", entry.path, good, f"sha256 {entry.sha256[:12]}, {note}")
        )
    chosen = [
        e
        for e in record.artifacts
        if artifacts is None or any(e.path == a or e.path.startswith(a + "/") for a in artifacts)
    ]
    if artifacts is not None and not chosen:
        result.links.append(
            Link("artifact", ", ".join(sorted(artifacts)), False, "not in the run's record")
        )
    directory = cache.cache_dir(repo)
    for entry in chosen:
        path = cache.object_path(directory, entry.sha256)
        if not path.is_file():
            ok, note = False, f"not in the local cache; fetch it with `xp get {record.id}`"
        elif cache.verify(directory, entry.sha256):
            ok, note = True, f"bytes match ({entry.size:,} bytes)"
        else:
            ok, note = False, "the cached bytes do not hash to the recorded sha256: tampered"
        result.links.append(Link("artifact", entry.path, ok, f"sha256 {entry.sha256[:12]}, {note}"))
