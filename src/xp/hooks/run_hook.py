"""What xp's git hooks do (``xp hook <name>``): pre-commit checks, pre-push uploads,
post-checkout materialisation. Settings: the ``hooks:`` section of ``.xp/config.yaml``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from xp import format as fmt
from xp.config import DEFAULT_MAX_FILE_SIZE, load_config, parse_size
from xp.errors import ConfigError, XPError
from xp.gitstore.repo import GitRepo
from xp.record import yamlio

ZERO = "0" * 40


@dataclass(frozen=True)
class HookSettings:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # pre-commit: 0 turns the size check off
    check_record: bool = True  # pre-commit: a committed .xp/run/ must describe this code
    check_files: bool = True  # pre-commit: staged params/metrics files must parse
    post_checkout: str = "link"  # off | link | copy


def settings(repo: GitRepo) -> HookSettings:
    raw = load_config(repo).raw.get("hooks") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{fmt.CONFIG_PATH}: 'hooks' must be a mapping; see docs/hooks.md")
    mode = str(raw.get("post_checkout", "link")).lower()
    if mode in ("false", "none", "no"):
        mode = "off"
    if mode not in ("off", "link", "copy"):
        raise ConfigError(f"{fmt.CONFIG_PATH}: hooks.post_checkout must be off, link or copy")
    size = raw.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    return HookSettings(
        max_file_size=0 if size in (0, False, None) else parse_size(size, "hooks.max_file_size"),
        check_record=bool(raw.get("check_record", True)),
        check_files=bool(raw.get("check_files", True)),
        post_checkout=mode,
    )


def human_size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} TB"  # pragma: no cover


def _index_env() -> dict[str, str]:
    """git runs pre-commit with GIT_INDEX_FILE set for `commit -a`/partial commits: keep it."""
    index = os.environ.get("GIT_INDEX_FILE")
    return {"GIT_INDEX_FILE": index} if index else {}


# -- pre-commit -----------------------------------------------------------------------------
@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)


def _staged(repo: GitRepo) -> list[tuple[str, str]]:
    """(path, blob sha) of files added or modified in the index being committed."""
    proc = repo.git(
        "diff",
        "--cached",
        "--raw",
        "--no-abbrev",
        "-z",
        "--no-renames",
        "--diff-filter=AM",
        env=_index_env(),
    )
    fields = proc.stdout.split(b"\0")
    out = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.decode().split()
        if len(parts) >= 4 and parts[1] != "160000":
            out.append((os.fsdecode(path), parts[3]))
    return out


def _sizes(repo: GitRepo, shas: list[str]) -> dict[str, int]:
    if not shas:
        return {}
    proc = repo.git(
        "cat-file", "--batch-check=%(objectname) %(objectsize)", input="\n".join(shas).encode()
    )
    sizes = {}
    for line in proc.stdout.decode().splitlines():
        sha, _, size = line.partition(" ")
        if size.isdigit():
            sizes[sha] = int(size)
    return sizes


def _parse(path: str, data: bytes) -> None:
    if path.lower().endswith(".json"):
        try:
            json.loads(data or b"{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    else:
        yamlio.load(data, path)


def _stale_record(repo: GitRepo, staged_paths: set[str]) -> str | None:
    env = _index_env()
    proc = repo.git("show", f":{fmt.RECORD_DIR}/{fmt.META_FILE}", env=env, check=False)
    if proc.returncode != 0:
        return None  # no record in this commit
    try:
        meta = yamlio.load(proc.stdout, fmt.META_FILE) or {}
    except ConfigError as exc:
        return str(exc)
    from xp.query.resolve import run_refs

    run_id = str(meta.get("id", "")) if isinstance(meta, dict) else ""
    ref = run_refs(repo).get(run_id)
    if ref is None:
        return None  # the run is not here to compare with: nothing to say
    diff = repo.git(
        "diff",
        "--cached",
        "--quiet",
        ref.commit,
        "--",
        ".",
        f":(exclude){fmt.RECORD_DIR}",
        env=env,
        check=False,
    )
    if diff.returncode == 1:
        return (
            f"{fmt.RECORD_DIR}/ describes run {run_id}, but the code changed since that run:"
            f" record a new run (`xp commit`) or drop the record (`git rm -r --cached"
            f" {fmt.RECORD_DIR}`); XP_SKIP_HOOKS=1 skips this check once"
        )
    return None


def pre_commit(repo: GitRepo) -> CheckResult:
    conf = settings(repo)
    result = CheckResult()
    staged = _staged(repo)
    if conf.max_file_size:
        sizes = _sizes(repo, [sha for _, sha in staged])
        for path, sha in staged:
            size = sizes.get(sha, 0)
            if size > conf.max_file_size:
                result.problems.append(
                    f"{path} is {human_size(size)}, over the {human_size(conf.max_file_size)}"
                    " limit for git: unstage it (`git restore --staged {path}`), add it to"
                    " .gitignore and track it as an artifact (`xp commit --artifact"
                    f" {path}` or xp.log_artifact); or raise hooks.max_file_size in"
                    f" {fmt.CONFIG_PATH}"
                )
    if conf.check_files:
        config = load_config(repo)
        watched = set(config.params) | set(config.metrics) | {fmt.CONFIG_PATH}
        for path, sha in staged:
            if path in watched:
                data = repo.git("cat-file", "blob", sha).stdout
                try:
                    _parse(path, data)
                except ConfigError as exc:
                    result.problems.append(f"{exc}; fix it before committing")
    if conf.check_record:
        stale = _stale_record(repo, {p for p, _ in staged})
        if stale:
            result.problems.append(stale)
    return result


# -- pre-push ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PushLine:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_push_lines(text: str) -> list[PushLine]:
    lines = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) == 4:
            lines.append(PushLine(*parts))
    return lines


def commits_to_upload(repo: GitRepo, remote: str, lines: list[PushLine]) -> list[str]:
    """Run commits being pushed: the runs themselves, and record-carrying commits on branches."""
    commits: list[str] = []
    for line in lines:
        if line.local_sha == ZERO:
            continue  # a deletion sends nothing
        if line.local_ref.startswith("refs/xp/"):
            commits.append(line.local_sha)
            continue
        args = ["log", "--format=%H", line.local_sha, "--not", f"--remotes={remote}"]
        if line.remote_sha != ZERO:
            known = repo.git("cat-file", "-e", line.remote_sha, check=False).returncode == 0
            if known:
                args.append(line.remote_sha)
        args += ["--", fmt.RECORD_DIR]
        commits += repo.git(*args).stdout.decode().split()
    return list(dict.fromkeys(commits))


def framework_push_lines() -> list[PushLine]:
    """The pre-commit framework passes no stdin, only its first pushed ref in variables."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if not to_ref:
        return []
    return [
        PushLine(
            os.environ.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD"),
            to_ref,
            os.environ.get("PRE_COMMIT_REMOTE_BRANCH", ""),
            os.environ.get("PRE_COMMIT_FROM_REF") or ZERO,
        )
    ]


def unpushed_runs(repo: GitRepo, remote: str) -> list[str]:
    """Commits of local runs the remote is not known to have (no refs/xp/remotes copy)."""
    from xp.query.resolve import run_refs

    prefix = f"{fmt.REMOTES_PREFIX}{remote}/runs/"
    from xp.gitstore.refs import list_refs

    there = {name[len(prefix) :] for name in list_refs(repo.common_dir, prefix)}
    return [
        r.commit
        for r in run_refs(repo).values()
        if r.ref.startswith(fmt.RUNS_PREFIX) and r.id not in there
    ]


def pre_push(repo: GitRepo, remote: str, stdin_text: str) -> Any:
    """Upload the artifacts of the runs being pushed; raises (push aborted) when that fails.

    Under the pre-commit framework only the first pushed ref is known, so every local run the
    remote may lack is checked too (the store's batch listing keeps that cheap).
    """
    if os.environ.get("XP_SKIP_PUSH") == "1":
        return None
    lines = parse_push_lines(stdin_text)
    commits = []
    if not lines and os.environ.get("PRE_COMMIT_TO_REF"):
        lines = framework_push_lines()
        commits = unpushed_runs(repo, remote)
    commits += commits_to_upload(repo, remote, lines)
    commits = list(dict.fromkeys(commits))
    if not commits:
        return None
    from xp.sharing.push_pull import upload_missing

    try:
        return upload_missing(repo, commits)
    except XPError as exc:
        raise XPError(f"push stopped: {exc} (XP_SKIP_PUSH=1 pushes without uploading)") from None


# -- post-checkout ----------------------------------------------------------------------------
@dataclass
class CheckoutResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a different file was there: left alone
    absent: list[str] = field(default_factory=list)  # on no store


def post_checkout(repo: GitRepo, new_head: str, branch_checkout: bool) -> CheckoutResult:
    """Put the artifacts of the checked-out commit's run record where they were logged from.

    Never overwrites a file with other content (it is reported as kept); objects missing
    from the cache come from the default artifact remote, re-hashed on arrival.
    """
    result = CheckoutResult()
    conf = settings(repo)
    if not branch_checkout or conf.post_checkout == "off":
        return result
    from xp.artifacts import cache
    from xp.artifacts.manifests import Needed, cat_files, check_entry, parse_entries
    from xp.sharing.checkout import work_tree_destination

    spec = f"{new_head}:{fmt.RECORD_DIR}/{fmt.ARTIFACTS_FILE}"
    data = cat_files(repo, [spec]).get(spec)
    if not data:
        return result
    wanted: list[tuple[Needed, str]] = []
    for entry in parse_entries(data, spec):
        path, sha, size = check_entry(entry, spec)
        source = entry.get("source")
        where = work_tree_destination(repo, source if isinstance(source, str) else path)
        rel = where.relative_to(repo.worktree).as_posix()
        wanted.append((Needed(new_head[:12], path, sha, size, "artifact"), rel))
    from xp.sharing.push_pull import download_missing

    fetched = download_missing(repo, [n for n, _ in wanted])
    absent = {n.sha256 for n in fetched.absent}
    cache_dir = cache.cache_dir(repo)
    links = ("reflink", "hardlink", "copy") if conf.post_checkout == "link" else ("reflink", "copy")
    for item, rel in wanted:
        target = repo.worktree / rel
        obj = cache.object_path(cache_dir, item.sha256)
        if item.sha256 in absent or not obj.is_file():
            result.absent.append(rel)
        elif target.is_file() and cache.hash_file(target)[0] == item.sha256:
            result.unchanged.append(rel)
        elif target.exists():
            result.kept.append(rel)
        else:
            cache.materialise(obj, target, links)
            result.written.append(rel)
    return result
