"""One exception tree for everything a user can get wrong.

The library raises; only the CLI prints. Each message names the problem and the fix
in one line, so the CLI boundary can print ``str(err)`` and exit with ``exit_code``.
"""

from __future__ import annotations


class XPError(Exception):
    """A problem the user can fix; ``str()`` is a one-line message saying how."""

    exit_code = 1


class NotARepoError(XPError):
    pass


class InvalidKeyError(XPError, ValueError):
    pass


class InvalidValueError(XPError, ValueError):
    pass


class ParamChangedError(XPError, ValueError):
    pass


class RunNotFoundError(XPError, LookupError):
    pass


class AmbiguousRunError(XPError, LookupError):
    pass


class NoActiveRunError(XPError):
    pass


class ConfigError(XPError):
    pass


class StorageError(XPError, OSError):
    """Writing to disk failed; nothing half-written was left behind."""


class RefExistsError(XPError):
    pass


class GitError(XPError):
    """The git CLI failed in a way the user must look at."""
