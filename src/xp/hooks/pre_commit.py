"""``xp hook pre-commit``: refuse a commit that would put big files in git, carry params or
metrics files that do not parse, or carry a run record that no longer describes the code."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from xp import format as fmt
from xp.config import human_size, load_config
from xp.errors import ConfigError
from xp.gitstore import catfile, staged
from xp.gitstore.repo import GitRepo
from xp.hooks.settings import settings
from xp.record import yamlio


def _index_file() -> str | None:
    """git runs pre-commit with GIT_INDEX_FILE set for `commit -a`/partial commits: keep it."""
    return os.environ.get("GIT_INDEX_FILE") or None


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)


def _parse(path: str, data: bytes) -> None:
    if path.lower().endswith(".json"):
        try:
            json.loads(data or b"{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    else:
        yamlio.load(data, path)


def _stale_record(repo: GitRepo) -> str | None:
    """Why the committed record no longer describes the code, or None."""
    index_file = _index_file()
    data = staged.read(repo, f"{fmt.RECORD_DIR}/{fmt.META_FILE}", index_file=index_file)
    if data is None:
        return None  # no record in this commit
    try:
        meta = yamlio.load(data, fmt.META_FILE) or {}
    except ConfigError as exc:
        return str(exc)
    from xp.query.resolve import find

    run_id = str(meta.get("id", "")) if isinstance(meta, dict) else ""
    entry = find(repo, run_id)
    if entry is None:
        return None  # the run is not here to compare with: nothing to say
    if staged.differs_from(repo, entry.commit, exclude=fmt.RECORD_DIR, index_file=index_file):
        return (
            f"{fmt.RECORD_DIR}/ describes run {run_id}, but the code changed since that run:"
            f" record a new run (`xp commit`) or drop the record (`git rm -r --cached"
            f" {fmt.RECORD_DIR}`); XP_SKIP_HOOKS=1 skips this check once"
        )
    return None


def pre_commit(repo: GitRepo) -> CheckResult:
    """Every reason to refuse the commit being made (none: let it through)."""
    conf = settings(repo)
    result = CheckResult()
    files = staged.files(repo, index_file=_index_file())
    if conf.max_file_size:
        sizes = catfile.sizes(repo, [sha for _, sha in files])
        for path, sha in files:
            size = sizes.get(sha, 0)
            if size > conf.max_file_size:
                result.problems.append(
                    f"{path} is {human_size(size)}, over the {human_size(conf.max_file_size)}"
                    f" limit for git: unstage it (`git restore --staged {path}`), add it to"
                    " .gitignore and track it as an artifact (`xp commit --artifact"
                    f" {path}` or xp.log_artifact); or raise hooks.max_file_size in"
                    f" {fmt.CONFIG_PATH}"
                )
    if conf.check_files:
        config = load_config(repo)
        watched = set(config.params) | set(config.metrics) | {fmt.CONFIG_PATH}
        for path, sha in files:
            if path in watched:
                data = catfile.read_blob(repo, sha)
                try:
                    _parse(path, data)
                except ConfigError as exc:
                    result.problems.append(f"{exc}; fix it before committing")
    if conf.check_record:
        stale = _stale_record(repo)
        if stale:
            result.problems.append(stale)
    return result
