"""A model registry in annotated git tags, in GTO's format (iterative/gto), so both read it.

Tags (names: ``[a-z0-9]([a-z0-9-/]*[a-z0-9])?``, versions: ``v`` + semver):

  ``name@v1.2.0``        register version v1.2.0 of ``name`` at a commit
  ``name@v1.2.0!``       deregister it
  ``name#stage#N``       assign ``stage`` to the version registered at the tag's commit
  ``name#stage!#N``      unassign it
  ``name@deprecated``    deprecate the whole artifact

``N`` counts the artifact's assign/unassign tags (GTO's rule: one more than the highest yet),
so a stage can be assigned again. xp tags point at the run's commit and their message is
GTO's, plus ``xp-run: <id>`` and one ``xp-artifact: <path>`` line per registered artifact
path. State is recomputed from the tags on every read, ordered by tagger time then counter.
Tags travel with ``git push origin <tag>`` / ``--tags``; a tag that already exists on the
remote is rejected by git, which is how two people registering the same version conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xp import format as fmt
from xp.errors import (
    InvalidValueError,
    ModelNotFoundError,
    RefExistsError,
    RefRejectedError,
    RegistryError,
)
from xp.gitstore import remote as git_remote
from xp.gitstore import tags
from xp.gitstore.repo import GitRepo

NAME = r"[a-z0-9](?:[a-z0-9-/]*[a-z0-9])?"
SEMVER = (
    r"v(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
NAME_RE = re.compile(rf"^{NAME}$")
VERSION_RE = re.compile(rf"^{SEMVER}$")
TAG_RE = re.compile(
    rf"^(?P<name>{NAME})(?:(?:#(?P<stage>{NAME})|@(?P<version>{SEMVER}))(?P<cancel>!?)"
    rf"|@(?P<deprecated>deprecated))(?:#(?P<counter>[0-9]+))?$"
)
LOG_ARTIFACT = fmt.RUN_LOG_ARTIFACT  # what `xp run` saves; never the model by default


@dataclass(frozen=True)
class Event:
    """One registry tag, parsed."""

    tag: str
    action: str  # register, deregister, assign, unassign, deprecate
    name: str
    commit: str
    time: int
    version: str | None = None
    stage: str | None = None
    counter: int = 0
    message: str = ""
    tagger: str = ""  # "Name <email>" of whoever made the tag

    @property
    def run_id(self) -> str | None:
        return _trailers(self.message, "xp-run")[0] if _trailers(self.message, "xp-run") else None

    @property
    def artifacts(self) -> list[str]:
        return _trailers(self.message, "xp-artifact")

    @property
    def rollback_from(self) -> str | None:
        """The version a rollback took the stage away from (``xp-rollback-from:``)."""
        found = _trailers(self.message, "xp-rollback-from")
        return found[0] if found else None


_ORDER = {"register": 0, "assign": 1, "unassign": 2, "deregister": 3, "deprecate": 4}


@dataclass
class Version:
    name: str
    version: str
    commit: str
    time: int
    tag: str
    run_id: str | None
    artifacts: list[str]
    active: bool = True
    stages: list[str] = field(default_factory=list)
    message: str = ""  # the register tag's message (GTO's line, the user's note, trailers)
    tagger: str = ""  # "Name <email>" of whoever registered it


@dataclass
class Model:
    name: str
    versions: dict[str, Version] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> version
    deprecated: bool = False
    counter: int = 0

    @property
    def latest(self) -> Version | None:
        active = [v for v in self.versions.values() if v.active]
        return max(active, key=lambda v: semver_key(v.version)) if active else None

    def by_commit(self, commit: str) -> Version | None:
        return next((v for v in self.versions.values() if v.commit == commit), None)


def _trailers(message: str, key: str) -> list[str]:
    prefix = f"{key}: "
    return [ln[len(prefix) :].strip() for ln in message.splitlines() if ln.startswith(prefix)]


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key: numbers numerically; a pre-release sorts before its release."""
    core, _, _build = version[1:].partition("+")
    nums, dash, pre = core.partition("-")
    major, minor, patch = (int(n) for n in nums.split("."))
    pre_key = (
        tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if dash else ()
    )
    return (major, minor, patch, 0 if dash else 1, pre_key)


def parse_tag(tag: str) -> dict[str, Any] | None:
    match = TAG_RE.match(tag)
    if not match:
        return None
    out: dict[str, Any] = {"name": match["name"], "counter": int(match["counter"] or 0)}
    if match["deprecated"]:
        out["action"] = "deprecate"
    elif match["version"]:
        out["version"] = match["version"]
        out["action"] = "deregister" if match["cancel"] else "register"
    else:
        out["stage"] = match["stage"]
        out["action"] = "unassign" if match["cancel"] else "assign"
    return out


def events(repo: GitRepo) -> list[Event]:
    """Every annotated registry tag, oldest first (lightweight tags are ignored, as GTO does)."""
    found: list[Event] = []
    for tag in tags.annotated(repo):
        parsed = parse_tag(tag.name)
        if parsed is None:
            continue
        found.append(
            Event(
                tag=tag.name,
                commit=tag.commit,
                time=tag.time,
                message=tag.message,
                tagger=tag.tagger,
                **parsed,
            )
        )
    found.sort(key=lambda e: (e.time, e.counter, _ORDER[e.action], e.tag))
    return found


@dataclass(frozen=True)
class StageChange:
    """Who holds a stage after one registry event that changed it."""

    name: str
    stage: str
    version: str | None  # the version in the stage from then on; None: the stage is empty
    time: int  # the tag's date, seconds since the epoch
    tag: str  # the tag that made the change
    tagger: str  # "Name <email>"
    action: str  # assign, unassign or deregister
    rollback_from: str | None = None  # set when the change was `xp model rollback`


@dataclass
class Registry:
    """The registry replayed from its tags: models, and every stage's history."""

    models: dict[str, Model]
    history: dict[tuple[str, str], list[StageChange]]  # (name, stage) -> changes, oldest first


_replayed: dict[str, tuple[tuple[tuple[str, str], ...], Registry]] = {}


def replay(repo: GitRepo) -> Registry:
    """Replay the tags into models and stage histories (GTO's rules).

    A stage holds the most recently assigned version whose assignment was not undone and that
    is not deregistered. The result is cached per process until a tag ref changes, so a loop
    of ``xp.log_production`` calls reads the tags once.
    """
    from xp.gitstore.refs import list_refs

    key = tuple(sorted(list_refs(repo.common_dir, "refs/tags/").items()))
    hit = _replayed.get(str(repo.common_dir))
    if hit is not None and hit[0] == key:
        return hit[1]
    result = _replay(events(repo))
    _replayed[str(repo.common_dir)] = (key, result)
    return result


def _replay(found: list[Event]) -> Registry:
    models: dict[str, Model] = {}
    assigned: dict[tuple[str, str], tuple[list[str], dict[str, bool]]] = {}  # order, live
    history: dict[tuple[str, str], list[StageChange]] = {}

    def holder(name: str, stage: str) -> str | None:
        order, live = assigned[(name, stage)]
        current = [v for v in order if live[v] and models[name].versions[v].active]
        return current[-1] if current else None

    def record(ev: Event, stage: str) -> None:
        now = holder(ev.name, stage)
        changes = history.setdefault((ev.name, stage), [])
        if changes and changes[-1].version == now:
            return
        if not changes and now is None:
            return
        rollback = ev.rollback_from if ev.action == "assign" else None
        changes.append(
            StageChange(ev.name, stage, now, ev.time, ev.tag, ev.tagger, ev.action, rollback)
        )

    for ev in found:
        model = models.setdefault(ev.name, Model(ev.name))
        model.counter = max(model.counter, ev.counter)
        if ev.action == "register" and ev.version:
            model.versions[ev.version] = Version(
                ev.name,
                ev.version,
                ev.commit,
                ev.time,
                ev.tag,
                ev.run_id,
                ev.artifacts,
                message=ev.message,
                tagger=ev.tagger,
            )
        elif ev.action == "deregister" and ev.version in model.versions:
            model.versions[ev.version].active = False
            for _name, stage in [k for k in assigned if k[0] == ev.name]:
                record(ev, stage)
        elif ev.action == "deprecate":
            model.deprecated = True
        elif ev.action in ("assign", "unassign") and ev.stage:
            version = model.by_commit(ev.commit)
            if version is not None:
                order, live = assigned.setdefault((ev.name, ev.stage), ([], {}))
                live[version.version] = ev.action == "assign"
                if ev.action == "assign":
                    order[:] = [v for v in order if v != version.version] + [version.version]
                record(ev, ev.stage)
    for (name, stage), changes in history.items():
        held = changes[-1].version if changes else None
        if held is not None:
            models[name].stages[stage] = held
            models[name].versions[held].stages.append(stage)
    return Registry(models, history)


def state(repo: GitRepo) -> dict[str, Model]:
    """Replay the tags into models: versions, which version holds each stage."""
    return replay(repo).models


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagResult:
    tag: str
    name: str
    version: str
    commit: str
    run_id: str | None = None
    artifacts: tuple[str, ...] = ()
    stage: str | None = None
    pushed: str | None = None  # the remote it was pushed to


def check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise InvalidValueError(
            f"{what} {value!r} must be lower-case letters, digits, '-' or '/', starting and"
            " ending with a letter or digit (GTO's rule), e.g. churn-model"
        )
    return value


def _model(repo: GitRepo, name: str) -> Model:
    models = state(repo)
    if name not in models or not models[name].versions:
        known = ", ".join(sorted(m for m in models if models[m].versions)) or "none yet"
        raise ModelNotFoundError(
            f"no model {name!r}; registered models: {known} (register one with"
            " `xp model register NAME RUN`)"
        )
    return models[name]


def _version(model: Model, version: str) -> Version:
    v = model.versions.get(version)
    if v is None or not v.active:
        active = [x.version for x in model.versions.values() if x.active]
        active.sort(key=semver_key)
        gone = " (it was deregistered)" if v is not None else ""
        raise ModelNotFoundError(
            f"{model.name}@{version} does not exist{gone}; registered versions:"
            f" {', '.join(active) or 'none'}"
        )
    return v


def _select_artifacts(run: Any, wanted: tuple[str, ...]) -> tuple[str, ...]:
    paths = [a.path for a in run.artifacts]
    if not wanted:
        chosen = [p for p in paths if p != LOG_ARTIFACT]
        if not chosen:
            raise InvalidValueError(
                f"run {run.id} has no artifacts to register; log the model with"
                " xp.log_artifact, or register another run"
            )
        return tuple(sorted(chosen))
    out: list[str] = []
    for want in wanted:
        key = want.replace("\\", "/").strip("/")
        if key in paths or any(p.startswith(key + "/") for p in paths):
            out.append(key)
            continue
        raise InvalidValueError(
            f"run {run.id} has no artifact {want!r}; it has: {', '.join(sorted(paths)) or 'none'}"
        )
    return tuple(out)


def _create_tag(repo: GitRepo, tag: str, commit: str, message: str) -> None:
    from xp.gitstore import signing

    try:
        tags.create(repo, tag, commit, message, sign=signing.enabled(repo))
    except RefExistsError:
        raise RefExistsError(f"tag {tag} already exists; someone registered it first") from None


def push_tag(repo: GitRepo, tag: str, remote: str) -> None:
    """Push one tag. A tag the remote has already (someone else's) is a clear conflict; our
    local copy is then deleted, so ``git fetch --tags`` can bring theirs."""
    try:
        rejected = any(r.rejected for r in git_remote.push(repo, remote, [f"refs/tags/{tag}"]))
    except (RefExistsError, RefRejectedError):
        rejected = True
    if rejected:
        tags.delete(repo, tag)
        raise RefExistsError(
            f"{remote} already has tag {tag}: someone else registered or assigned it first."
            f" Your local tag was removed; run `git fetch {remote} --tags`, look with"
            " `xp model show`, and retry with the next version or counter"
        )


def register(
    repo: GitRepo,
    *,
    run: str,
    name: str,
    version: str | None = None,
    artifacts: tuple[str, ...] = (),
    message: str | None = None,
    push: str | None = None,
) -> TagResult:
    """Register the run's artifacts as ``name@version`` (next patch version when not given)."""
    from xp.query.resolve import load_run

    check_name(name, "model name")
    if version is not None and not VERSION_RE.match(version):
        raise InvalidValueError(f"version {version!r} must look like v1.2.0 (semver with a 'v')")
    view = load_run(repo, run)
    chosen = _select_artifacts(view.record, artifacts)
    model = state(repo).get(name, Model(name))
    taken = model.by_commit(view.commit)
    if taken is not None and taken.active:
        raise RegistryError(
            f"run {view.record.id} is already registered as {name}@{taken.version};"
            f" deregister it first (xp model deregister {name} {taken.version})"
        )
    if version is None:
        latest = model.latest
        if latest is None:
            version = "v0.0.1"
        else:
            major, minor, patch = latest.version[1:].split("-")[0].split("+")[0].split(".")
            version = f"v{major}.{minor}.{int(patch) + 1}"
    elif version in model.versions:
        raise RefExistsError(
            f"{name}@{version} is registered already (tag {model.versions[version].tag});"
            " pick another version"
        )
    tag = f"{name}@{version}"
    body = f"Registering artifact {name} version {version}"
    if message:
        body += f"\n\n{message}"
    body += f"\n\nxp-run: {view.record.id}\n" + "".join(f"xp-artifact: {a}\n" for a in chosen)
    _create_tag(repo, tag, view.commit, body)
    if push:
        push_tag(repo, tag, push)
    return TagResult(tag, name, version, view.commit, view.record.id, chosen, None, push)


def assign(
    repo: GitRepo,
    *,
    name: str,
    version: str,
    stage: str,
    push: str | None = None,
    rollback_from: str | None = None,
) -> TagResult:
    """Put ``name@version`` in ``stage`` (tag ``name#stage#N``); the stage's old version leaves.

    ``rollback_from`` marks the tag as a rollback from that version (``xp model rollback``)."""
    check_name(name, "model name")
    check_name(stage, "stage")
    model = _model(repo, name)
    v = _version(model, _norm_version(version))
    if model.stages.get(stage) == v.version:
        raise RegistryError(f"{name}@{v.version} is already in stage {stage!r}")
    tag = f"{name}#{stage}#{model.counter + 1}"
    body = f"Assigning stage {stage} to artifact {name} version {v.version}"
    trailers = [f"xp-run: {v.run_id}"] if v.run_id else []
    if rollback_from:
        trailers.append(f"xp-rollback-from: {rollback_from}")
    body += "\n\n" + "".join(f"{t}\n" for t in trailers) if trailers else ""
    _create_tag(repo, tag, v.commit, body)
    if push:
        push_tag(repo, tag, push)
    return TagResult(tag, name, v.version, v.commit, v.run_id, tuple(v.artifacts), stage, push)


def unassign(repo: GitRepo, *, name: str, stage: str, push: str | None = None) -> TagResult:
    """Take ``stage`` away from the version that holds it (tag ``name#stage!#N``)."""
    model = _model(repo, name)
    held = model.stages.get(stage)
    if held is None:
        raise ModelNotFoundError(
            f"no version of {name} is in stage {stage!r}; stages: {_stages(model)}"
        )
    v = model.versions[held]
    tag = f"{name}#{stage}!#{model.counter + 1}"
    body = f"Unassigning stage '{stage}' to artifact '{name}' version '{held}'"
    _create_tag(repo, tag, v.commit, body)
    if push:
        push_tag(repo, tag, push)
    return TagResult(tag, name, held, v.commit, v.run_id, tuple(v.artifacts), stage, push)


def deregister(repo: GitRepo, *, name: str, version: str, push: str | None = None) -> TagResult:
    """Withdraw ``name@version`` (tag ``name@version!``); its stages go with it."""
    model = _model(repo, name)
    v = _version(model, _norm_version(version))
    tag = f"{name}@{v.version}!"
    _create_tag(repo, tag, v.commit, f"Deregistering artifact {name} version {v.version}")
    if push:
        push_tag(repo, tag, push)
    return TagResult(tag, name, v.version, v.commit, v.run_id, tuple(v.artifacts), None, push)


def _stages(model: Model) -> str:
    return ", ".join(f"{s}={v}" for s, v in sorted(model.stages.items())) or "none"


def _norm_version(version: str) -> str:
    version = version.strip()
    return version if version.startswith("v") else f"v{version}"


# -- reading ------------------------------------------------------------------------------


def resolve(repo: GitRepo, spec: str) -> Version:
    """``name@v1.2.0``, ``name@latest``, ``name@STAGE`` or ``name#STAGE`` -> that version."""
    name, sep, which = spec.partition("@") if "@" in spec else spec.partition("#")
    if not sep or not which:
        raise InvalidValueError(
            f"{spec!r} must be NAME@VERSION, NAME@STAGE or NAME@latest, e.g. churn@production"
        )
    model = _model(repo, name)
    if which == "latest":
        latest = model.latest
        if latest is None:
            raise ModelNotFoundError(f"{name} has no registered version left")
        return latest
    if sep == "@" and VERSION_RE.match(which):
        return _version(model, which)
    if which not in model.stages:
        raise ModelNotFoundError(
            f"{name} has no version in stage {which!r}; stages: {_stages(model)}"
        )
    return model.versions[model.stages[which]]


def show(repo: GitRepo, *, name: str | None = None) -> list[Model]:
    """Models (or one model) with their versions and stages, for ``xp model show``."""
    if name is not None:
        return [_model(repo, name)]
    return [m for _, m in sorted(state(repo).items()) if m.versions and not m.deprecated]


def get(
    repo: GitRepo, *, spec: str, out_dir: str | Path, force: bool = False
) -> tuple[Version, list[Path]]:
    """Write the registered artifact files of ``spec`` into ``out_dir``."""
    from xp.sharing import get as restore

    v = resolve(repo, spec)
    result = restore.get(repo, run=v.commit, paths=tuple(v.artifacts), out_dir=out_dir, force=force)
    written = [dest for _p, dest, _kind in result.written]
    written += [Path(out_dir).resolve() / p for p in result.unchanged]
    return v, written
