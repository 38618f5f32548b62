"""The ``hooks:`` section of ``.xp/config.yaml``: what each of xp's git hooks checks or does."""

from __future__ import annotations

from dataclasses import dataclass

from xp import format as fmt
from xp.config import DEFAULT_MAX_FILE_SIZE, load_config, parse_size
from xp.errors import ConfigError
from xp.gitstore.repo import GitRepo

HOOKS = ("pre-commit", "pre-push", "post-checkout")  # the hooks xp has (hooks/install.py)

ZERO = "0" * 40


@dataclass(frozen=True)
class HookSettings:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE  # pre-commit: 0 turns the size check off
    check_record: bool = True  # pre-commit: a committed .xp/run/ must describe this code
    check_files: bool = True  # pre-commit: staged params/metrics files must parse
    # off | copy (reflink, else a copy: the default) | link (hard links allowed: opt-in)
    post_checkout: str = "copy"
    install: tuple[str, ...] = ()  # hooks a clone gets by itself on its first xp command


def settings(repo: GitRepo) -> HookSettings:
    raw = load_config(repo).raw.get("hooks") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{fmt.CONFIG_PATH}: 'hooks' must be a mapping; see docs/hooks.md")
    mode = str(raw.get("post_checkout", "copy")).lower()
    if mode in ("false", "none", "no"):
        mode = "off"
    if mode not in ("off", "link", "copy"):
        raise ConfigError(f"{fmt.CONFIG_PATH}: hooks.post_checkout must be off, link or copy")
    install = raw.get("install", ())
    if install is True:
        install = HOOKS
    elif install in (False, None):
        install = ()
    elif isinstance(install, str):
        install = (install,)
    if not isinstance(install, (list, tuple)) or any(h not in HOOKS for h in install):
        raise ConfigError(
            f"{fmt.CONFIG_PATH}: hooks.install must be true or a list of {', '.join(HOOKS)}"
        )
    size = raw.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    return HookSettings(
        max_file_size=0 if size in (0, False, None) else parse_size(size, "hooks.max_file_size"),
        check_record=bool(raw.get("check_record", True)),
        check_files=bool(raw.get("check_files", True)),
        post_checkout=mode,
        install=tuple(install),
    )
