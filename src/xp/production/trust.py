"""Whether a model version's files may be loaded here: unpickling runs code, so a pickle from
someone else's run is someone else's program.

``version_trust`` is the one rule: trusted when the run was recorded in this clone (its ref
is under ``refs/xp/runs/``, where a fetch never writes) or when the version's registry tag
is signed by a key ``git verify-tag`` accepts; anything else needs the user's explicit
consent (``xp model serve --trust``). ``xp reproduce`` asks the same question of a run's
recorded command (issue 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from xp import format as fmt
from xp.gitstore import tags
from xp.gitstore.refs import list_refs, read_ref
from xp.gitstore.repo import GitRepo
from xp.sharing.registry import Version


@dataclass(frozen=True)
class Trust:
    trusted: bool
    reason: str  # why it is trusted, or where the run came from when it is not


def version_trust(repo: GitRepo, version: Version) -> Trust:
    """Whether ``version``'s run may have its files executed here, and why (not)."""
    if version.run_id and fmt.ID_RE.match(version.run_id):
        local = read_ref(repo.common_dir, fmt.run_ref(version.run_id))
        if local == version.commit:
            return Trust(True, f"run {version.run_id} was recorded in this clone")
    if tags.verified(repo, version.tag):
        return Trust(True, f"tag {version.tag} has a signature git verify-tag accepts")
    fetched = [
        name.removeprefix(fmt.REMOTES_PREFIX).partition("/")[0]
        for name, sha in list_refs(repo.common_dir, fmt.REMOTES_PREFIX).items()
        if sha == version.commit
    ]
    where = f"fetched from {', '.join(sorted(set(fetched)))}" if fetched else "not recorded here"
    return Trust(False, f"run {version.run_id or version.commit[:12]} was {where}")
