"""The Models page's documents: the model registry (GTO-format git tags) as ``xp model show``
and ``xp model status`` see it, for ``GET /api/v1/models`` and ``/api/v1/models/{name}``.

Everything comes from ``registry.replay``, which reads the tags once and keeps the result
until a tag ref changes; the documents built from one replay are kept with it, so a page that
polls costs one listing of the tag refs. A version's metrics come from its run's record at the
registered commit (commits never change, so each is read once per process). Tag messages,
taggers, run ids and artifact paths come from whoever pushed the tags: they are text to the
page, which never renders them as HTML.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xp.errors import ModelNotFoundError
from xp.gitstore.repo import GitRepo
from xp.record import values
from xp.record.build import iso_time

if TYPE_CHECKING:  # the registry is imported on the first request: `xp ui` starts without it
    from xp.sharing.registry import Model, Registry, Version

KEY_METRICS = 6  # metrics shown per version (sorted by name, as `xp model show` picks them)
_TRAILER = re.compile(r"^xp-[a-z-]+: ")


def note(message: str) -> str:
    """The user's ``-m`` note of a register tag: its message without GTO's first line and
    xp's trailers."""
    lines = message.strip().splitlines()
    if lines and lines[0].startswith("Registering artifact "):
        lines = lines[1:]
    return "\n".join(ln for ln in lines if not _TRAILER.match(ln)).strip()


class Models:
    """The registry's documents for one repository; safe to call from many threads."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._replayed: Registry | None = None
        self._docs: dict[str | None, dict[str, Any]] = {}  # None: the list; else one model
        self._metrics: dict[str, dict[str, Any]] = {}  # commit -> its run's name and metrics

    def _cached(self, key: str | None, make: Callable[[Registry], Any]) -> dict[str, Any]:
        from xp.sharing import registry

        reg = registry.replay(self.repo)  # the same object while the tags are unchanged
        with self._lock:
            if reg is not self._replayed:
                self._replayed, self._docs = reg, {}
            hit = self._docs.get(key)
        if hit is not None:
            return hit
        doc: dict[str, Any] = values.json_safe(make(reg))
        with self._lock:
            if reg is self._replayed:
                self._docs[key] = doc
        return doc

    def listing(self) -> dict[str, Any]:
        """Every model with versions: latest version, the version in each stage, the latest
        version's run and key metrics; ``stages`` is every stage name, for the columns."""
        return self._cached(None, self._list)

    def model(self, name: str) -> dict[str, Any]:
        """One model: its versions (newest first, deregistered ones included and marked), each
        stage's status (what `xp model status` prints) and every stage change, newest first."""
        return self._cached(name, lambda reg: self._model(reg, name))

    def _list(self, reg: Registry) -> dict[str, Any]:
        models = [m for _, m in sorted(reg.models.items()) if m.versions]
        out = []
        for m in models:
            latest = m.latest
            out.append(
                {
                    "name": m.name,
                    "deprecated": m.deprecated,
                    "latest": latest.version if latest else None,
                    "stages": dict(sorted(m.stages.items())),
                    "versions": len(m.versions),
                    "active": sum(v.active for v in m.versions.values()),
                    "run_id": latest.run_id if latest else None,
                    "run_name": self._run(latest.commit)["name"] if latest else None,
                    "commit": latest.commit if latest else None,
                    "registered": iso_time(latest.time) if latest else None,
                    "metrics": self._run(latest.commit)["metrics"] if latest else {},
                }
            )
        stages = sorted({s for m in models for s in m.stages})
        return {"models": out, "stages": stages}

    def _model(self, reg: Registry, name: str) -> dict[str, Any]:
        m = reg.models.get(name)
        if m is None or not m.versions:
            known = ", ".join(sorted(n for n, x in reg.models.items() if x.versions))
            raise ModelNotFoundError(
                f"no model {name!r}; registered models: {known or 'none yet'} (register one"
                " with `xp model register NAME RUN`)"
            )
        from xp.sharing.registry import semver_key

        newest = sorted(
            m.versions.values(), key=lambda v: (v.time, semver_key(v.version)), reverse=True
        )
        latest = m.latest
        return {
            "name": m.name,
            "deprecated": m.deprecated,
            "latest": latest.version if latest else None,
            "stages": dict(sorted(m.stages.items())),
            "versions": [self._version(v) for v in newest],
            "stage_status": self._stage_status(reg, m),
            "history": self._history(reg, m),
        }

    def _version(self, v: Version) -> dict[str, Any]:
        return {
            "version": v.version,
            "active": v.active,
            "stages": sorted(v.stages),
            "registered": iso_time(v.time),
            "by": v.tagger,
            "tag": v.tag,
            "run_id": v.run_id,
            "run_name": self._run(v.commit)["name"],
            "commit": v.commit,
            "artifacts": list(v.artifacts),
            "note": note(v.message),
            "metrics": self._run(v.commit)["metrics"],
        }

    def _stage_status(self, reg: Registry, m: Model) -> list[dict[str, Any]]:
        from xp.production.status import stage_status

        stages = sorted(stage for (n, stage) in reg.history if n == m.name)
        out = []
        for stage in stages:
            s = stage_status(reg, m, stage)
            out.append(
                {
                    "stage": s.stage,
                    "version": s.version,
                    "since": iso_time(s.since) if s.since is not None else None,
                    "by": s.by,
                    "tag": s.tag,
                    "previous": s.previous,
                    "rollback_to": s.rollback_to,
                }
            )
        return out

    def _history(self, reg: Registry, m: Model) -> list[dict[str, Any]]:
        from xp.sharing.registry import parse_tag

        # newest first in the replay's own order: tag date, then the tag's counter, then the
        # order within the stage (tags made in one second share a date)
        keyed = [
            ((c.time, (parse_tag(c.tag) or {}).get("counter", 0), i), c)
            for (n, _stage), cs in reg.history.items()
            if n == m.name
            for i, c in enumerate(cs)
        ]
        changes = [c for _key, c in sorted(keyed, key=lambda kc: kc[0], reverse=True)]
        return [
            {
                "stage": c.stage,
                "version": c.version,
                "time": iso_time(c.time),
                "action": c.action,
                "rollback_from": c.rollback_from,
                "by": c.tagger,
                "tag": c.tag,
            }
            for c in changes
        ]

    def _run(self, commit: str) -> dict[str, Any]:
        """The registered run's name and key metrics, from its record at ``commit``."""
        with self._lock:
            hit = self._metrics.get(commit)
        if hit is not None:
            return hit
        from xp.query.resolve import read_record

        record = read_record(self.repo, commit)
        found: dict[str, Any] = {
            "name": record.name if record is not None else None,
            "metrics": dict(sorted(record.metrics.items())[:KEY_METRICS]) if record else {},
        }
        with self._lock:
            if len(self._metrics) > 100_000:
                self._metrics.clear()
            self._metrics[commit] = found
        return found
