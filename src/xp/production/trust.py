"""Whether a model version's files may be loaded here: unpickling runs code, so a pickle from
someone else's run is someone else's program.

``version_trust`` is the one rule: trusted when this clone wrote the run's commit
(``gitstore.commit.recorded_here``, the rule ``xp reproduce`` applies to a recorded command;
a ref under ``refs/xp/runs/`` is not proof, since a fetch refspec can write there) or when the
version's registry tag is signed by a key ``git verify-tag`` accepts; anything else needs the
user's explicit consent (``xp model serve --trust``).
"""

from __future__ import annotations

from dataclasses import dataclass

from xp import format as fmt
from xp.gitstore import tags
from xp.gitstore.commit import recorded_here
from xp.gitstore.refs import list_refs
from xp.gitstore.repo import GitRepo
from xp.sharing.registry import Version


@dataclass(frozen=True)
class Trust:
    trusted: bool
    reason: str  # why it is trusted, or where the run came from when it is not


def version_trust(repo: GitRepo, version: Version) -> Trust:
    """Whether ``version``'s run may have its files executed here, and why (not)."""
    if recorded_here(repo, version.commit):
        run = version.run_id or version.commit[:12]
        return Trust(True, f"run {run} was recorded in this clone")
    if tags.verified(repo, version.tag):
        return Trust(True, f"tag {version.tag} has a signature git verify-tag accepts")
    from xp.gitstore import catalog

    copies = list_refs(repo.common_dir, fmt.REMOTES_PREFIX)
    copies.update(catalog.remote_runs(repo))  # runs a fetched catalog lists (format 2)
    fetched = [
        name.removeprefix(fmt.REMOTES_PREFIX).partition("/")[0]
        for name, sha in copies.items()
        if sha == version.commit
    ]
    where = f"fetched from {', '.join(sorted(set(fetched)))}" if fetched else "not recorded here"
    return Trust(False, f"run {version.run_id or version.commit[:12]} was {where}")
