"""``xp model status`` and ``xp model rollback``: which version each stage runs, since when,
who put it there, and what it replaced.

Everything comes from the registry tags (each assignment is a tag with its tagger and date),
so status is the same in every clone that fetched the tags. A rollback is one more assign
tag, marked ``xp-rollback-from: <version>``: history is never rewritten, and a second
rollback goes further back instead of returning to the version just rolled back from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from xp.errors import ModelNotFoundError, RegistryError
from xp.gitstore.repo import GitRepo
from xp.sharing import registry
from xp.sharing.registry import Model, Registry, StageChange, TagResult


@dataclass(frozen=True)
class StageStatus:
    """One stage of one model: what is deployed there and how it got there."""

    model: str
    stage: str
    version: str | None  # None: the stage is empty (unassigned)
    run_id: str | None
    commit: str | None
    since: int | None  # when the current version took the stage (tag date, epoch seconds)
    by: str  # the tagger who put it there
    tag: str | None  # the tag that did it
    previous: str | None  # the version that held the stage before it
    rollback_to: str | None  # what `xp model rollback` would assign
    history: tuple[StageChange, ...] = ()

    def to_dict(self, *, with_history: bool = True) -> dict[str, object]:
        out = asdict(self)
        if not with_history:
            out.pop("history")
        return out


@dataclass(frozen=True)
class RollbackResult:
    model: str
    stage: str
    from_version: str | None
    to_version: str
    tag: TagResult


def previous_version(changes: list[StageChange]) -> str | None:
    """The last version that held the stage before the current holder."""
    current = changes[-1].version if changes else None
    for change in reversed(changes[:-1]):
        if change.version is not None and change.version != current:
            return change.version
    return None


def rollback_target(changes: list[StageChange], model: Model) -> str | None:
    """The version a rollback assigns: walking back through the stage's holders, the first
    that differs from the current one, is still registered, and was not itself left by a
    rollback since (so rolling back twice goes two versions back)."""
    if not changes:
        return None
    current = changes[-1].version
    skip: set[str] = set()
    for i in range(len(changes) - 1, -1, -1):
        change = changes[i]
        v = change.version
        if i < len(changes) - 1 and v is not None and v != current and v not in skip:
            known = model.versions.get(v)
            if known is not None and known.active:
                return v
        if change.rollback_from:
            skip.add(change.rollback_from)
    return None


def holder_at(reg: Registry, model: Model, stage: str, when_ms: int) -> str | None:
    """The version that held ``stage`` at ``when_ms`` (tag dates have one-second resolution).

    Before the stage's first assignment, its first version: logs from before a team started
    tagging belong to what it tagged first. None when the stage was empty at that time."""
    changes = reg.history.get((model.name, stage), [])
    if not changes:
        return None
    held = changes[0].version
    for change in changes:
        if change.time * 1000 > when_ms:
            break
        held = change.version
    return held


def _models(reg: Registry, name: str | None) -> list[Model]:
    if name is None:
        return [m for _, m in sorted(reg.models.items()) if m.versions and not m.deprecated]
    model = reg.models.get(name)
    if model is None or not model.versions:
        known = ", ".join(sorted(m for m in reg.models if reg.models[m].versions)) or "none yet"
        raise ModelNotFoundError(
            f"no model {name!r}; registered models: {known} (register one with"
            " `xp model register NAME RUN`)"
        )
    return [model]


def stage_status(reg: Registry, model: Model, stage: str) -> StageStatus:
    changes = reg.history.get((model.name, stage), [])
    last = changes[-1] if changes else None
    held = model.versions.get(last.version) if last and last.version else None
    return StageStatus(
        model=model.name,
        stage=stage,
        version=held.version if held else None,
        run_id=held.run_id if held else None,
        commit=held.commit if held else None,
        since=last.time if last else None,
        by=last.tagger if last else "",
        tag=last.tag if last else None,
        previous=previous_version(changes),
        rollback_to=rollback_target(changes, model),
        history=tuple(changes),
    )


def status(repo: GitRepo, *, name: str | None = None) -> list[StageStatus]:
    """Every stage of every model (or of ``name``), sorted by model then stage."""
    reg = registry.replay(repo)
    out = []
    for model in _models(reg, name):
        stages = sorted(stage for (n, stage) in reg.history if n == model.name)
        out += [stage_status(reg, model, stage) for stage in stages]
    return out


def rollback(repo: GitRepo, *, name: str, stage: str, push: str | None = None) -> RollbackResult:
    """Assign the stage's previous version again, as a new tag marked as a rollback."""
    reg = registry.replay(repo)
    model = _models(reg, name)[0]
    if (name, stage) not in reg.history:
        stages = ", ".join(sorted(s for (n, s) in reg.history if n == name)) or "none"
        raise ModelNotFoundError(f"{name} was never in stage {stage!r}; its stages: {stages}")
    now = stage_status(reg, model, stage)
    if now.rollback_to is None:
        raise RegistryError(
            f"no earlier version of {name} to roll {stage} back to (it holds"
            f" {now.version or 'nothing'}); assign one with `xp model assign {name} VERSION"
            f" --stage {stage}`"
        )
    tag = registry.assign(
        repo,
        name=name,
        version=now.rollback_to,
        stage=stage,
        push=push,
        rollback_from=now.version,
    )
    return RollbackResult(name, stage, now.version, now.rollback_to, tag)
