"""One exception tree for everything a user can get wrong.

The library raises; only the CLI prints. Each message names the problem and the fix in one
line, so the CLI boundary prints ``str(err)`` and exits with ``exit_code``. Every class xp
raises is defined here, named for what failed, so callers can catch as narrowly as they like::

    XPError
    ├── InputError (ValueError)          a value passed to xp is wrong
    │   ├── InvalidKeyError              a param/metric/tag/artifact name
    │   ├── InvalidValueError            a value, option or argument
    │   │   ├── ParamChangedError        a param logged twice with different values
    │   │   └── UnsafePathError          a path that would lead out of its folder
    │   └── QueryError                   the filter/sort language
    ├── ConfigError                      a settings or record file cannot be read
    ├── NotFoundError (LookupError)      what was named does not exist
    │   ├── RunNotFoundError
    │   ├── AmbiguousRunError            an id prefix names several runs
    │   ├── ModelNotFoundError           a registry model, version or stage
    │   └── GitRemoteNotFoundError       no such git remote, or none to pick
    ├── RunStateError                    the run is not in a state for that call
    │   ├── NoActiveRunError
    │   ├── RunActiveError               a run is active already
    │   ├── RunEndedError                the run has ended
    │   └── RunNotRecordedError          end_run could not commit; the journal is kept
    ├── RepositoryError                  the git repository refuses
    │   ├── NotARepoError
    │   ├── GitError                     the git CLI failed
    │   │   └── GitRemoteError           push/fetch/ls-remote: URL, network or access
    │   ├── RefExistsError               a ref or tag exists already
    │   ├── RefRejectedError             a remote refused a ref update
    │   ├── RecordPathError              the tree cannot hold the record
    │   ├── SigningSetupError            git cannot sign with the user's key
    │   ├── ObjectMissingError           a git object the run needs was pruned
    │   └── DirtyWorkspaceError          uncommitted changes in the way
    ├── StorageError (OSError)           disk: full, permissions; nothing half-written
    │   ├── RefChangedError              a ref moved under a compare-and-swap
    │   └── LockedError                  a lock file is held
    ├── CorruptObjectError               stored bytes do not match their hash
    ├── RemoteError                      an artifact remote (folder, S3)
    ├── RegistryError                    the model registry refuses an action
    ├── HookError                        a git hook stops git
    ├── ExecutionError                   a command xp runs cannot start or be re-run
    │   └── UntrustedRunError            code from someone else's run needs your consent
    ├── BisectError                      a metric bisection cannot start or decide
    ├── VerificationError                a link of a provenance chain does not hold
    ├── BundleError                      an offline bundle cannot be written or imported
    ├── MissingDependencyError           an optional extra is not installed
    └── MlflowException                  an MLflow-API call refused (xp.mlflow, the MLflow
                                         plugin, xp import/export mlflow), with MLflow's code
"""

from __future__ import annotations


class XPError(Exception):
    """A problem the user can fix; ``str()`` is a one-line message saying how."""

    exit_code = 1


# -- input ------------------------------------------------------------------------------------
class InputError(XPError, ValueError):
    """A value passed to xp (API argument, CLI option, name) is not acceptable."""


class InvalidKeyError(InputError):
    pass


class InvalidValueError(InputError):
    pass


class ParamChangedError(InvalidValueError):
    pass


class UnsafePathError(InvalidValueError):
    """A path (from a record, a config, an argument) that would lead out of the folder it
    belongs to: through '..', an absolute path or a symlink."""


class QueryError(InputError):
    """A filter or sort expression that does not parse or names no column.

    Besides the one-line message it says where (so a search box can mark the spot):
    ``position`` is the 0-based offset of the bad ``token`` in the filter, in code points
    (None when the error has no place), and ``suggestions`` are texts that could replace it.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        token: str | None = None,
        suggestions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.position = position
        self.token = token
        self.suggestions = suggestions


class ConfigError(XPError):
    """A settings file or a run record cannot be read as xp expects."""


# -- not found --------------------------------------------------------------------------------
class NotFoundError(XPError, LookupError):
    pass


class RunNotFoundError(NotFoundError):
    pass


class AmbiguousRunError(NotFoundError):
    pass


class ModelNotFoundError(NotFoundError):
    pass


class GitRemoteNotFoundError(NotFoundError):
    pass


# -- run state --------------------------------------------------------------------------------
class RunStateError(XPError):
    pass


class NoActiveRunError(RunStateError):
    pass


class RunActiveError(RunStateError):
    pass


class RunEndedError(RunStateError):
    pass


class RunNotRecordedError(RunStateError):
    """``end_run`` could not commit the run (disk full, ...): nothing is lost, the journal is
    kept; ``xp.end_run()`` again retries, and ``xp recover`` records it once the process ends.
    ``__cause__`` is what failed."""


# -- the repository ---------------------------------------------------------------------------
class RepositoryError(XPError):
    pass


class NotARepoError(RepositoryError):
    pass


class GitError(RepositoryError):
    """The git CLI failed in a way the user must look at."""


class GitRemoteError(GitError):
    """A git remote cannot be reached, read or written."""


class RefExistsError(RepositoryError):
    pass


class RefRejectedError(RepositoryError):
    """A git remote refused a ref update (not a fast-forward, a hook, a protected ref)."""


class RecordPathError(RepositoryError):
    """The run's tree cannot hold its record files (a file where a folder must be)."""


class SigningSetupError(RepositoryError):
    """Signing is asked for, but git has no key it can sign with here."""


class ObjectMissingError(RepositoryError):
    """A git object a run needs is gone (``git gc --prune=now`` during the run)."""


class DirtyWorkspaceError(RepositoryError):
    pass


# -- storage ----------------------------------------------------------------------------------
class StorageError(XPError, OSError):
    """Writing to disk failed; nothing half-written was left behind."""


class RefChangedError(StorageError):
    """A ref moved between reading it and updating it; look again and retry."""


class LockedError(StorageError):
    pass


class CorruptObjectError(XPError):
    """Stored bytes do not match their hash (a cached object, a journal record)."""


# -- elsewhere --------------------------------------------------------------------------------
class RemoteError(XPError):
    """An artifact remote cannot be used: not configured, unreachable, or missing objects."""


class RegistryError(XPError):
    pass


class HookError(XPError):
    pass


class ExecutionError(XPError):
    """A command cannot be run, or a recorded command cannot be run again."""


class UntrustedRunError(ExecutionError):
    """Running or loading something from a run this clone did not record (a pickle, a
    command) would execute someone else's code; the message names the flag that consents."""


class BisectError(XPError):
    """``xp bisect`` cannot start (a range, an endpoint) or cannot judge a commit."""


class VerificationError(XPError):
    """A signature, hash or link of a run's provenance chain does not hold (``xp verify``)."""


class BundleError(XPError):
    """An offline bundle cannot be written, or is refused on import (damaged, tampered)."""


class MissingDependencyError(XPError):
    """An optional extra is not installed; the message names the pip command."""


# Optional modules -> (the extra that installs them, what needs them).
EXTRAS: dict[str, tuple[str, str]] = {
    "fsspec": ("s3", "an s3:// or other fsspec artifact remote"),
    "s3fs": ("s3", "an s3:// artifact remote"),
    "botocore": ("s3", "an s3:// artifact remote"),
    "aiobotocore": ("s3", "an s3:// artifact remote"),
    "pyarrow": ("parquet", "reading Parquet"),
    "sklearn": ("demo", "the demo project"),
    "distributed": ("dask", "--executor dask://"),
}


def missing_module(exc: ModuleNotFoundError) -> MissingDependencyError | None:
    """The error naming the extra for an optional module that failed to import, if it is one."""
    top = (exc.name or "").partition(".")[0]
    if top not in EXTRAS:
        return None
    extra, what = EXTRAS[top]
    return missing_extra(top, extra, what)


def missing_extra(module: str, extra: str, what: str) -> MissingDependencyError:
    """The error for an optional dependency that failed to import."""
    return MissingDependencyError(
        f"{what} needs {module}, which is not installed; install it with"
        f' pip install "git-xp[{extra}]"'
    )


# -- the MLflow-compatible API ------------------------------------------------------------------
# MLflow's error codes (its ``databricks_pb2.ErrorCode``) and the HTTP status each maps to.
MLFLOW_ERROR_CODES: dict[str, int] = {
    "OK": 0,
    "INTERNAL_ERROR": 1,
    "TEMPORARILY_UNAVAILABLE": 2,
    "IO_ERROR": 3,
    "BAD_REQUEST": 4,
    "INVALID_PARAMETER_VALUE": 1000,
    "ENDPOINT_NOT_FOUND": 1001,
    "MALFORMED_REQUEST": 1002,
    "INVALID_STATE": 1003,
    "PERMISSION_DENIED": 1004,
    "FEATURE_DISABLED": 1005,
    "CUSTOMER_UNAUTHORIZED": 1006,
    "REQUEST_LIMIT_EXCEEDED": 1007,
    "NOT_IMPLEMENTED": 1010,
    "RESOURCE_ALREADY_EXISTS": 3001,
    "RESOURCE_DOES_NOT_EXIST": 3002,
}
_MLFLOW_HTTP_STATUS = {
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "IO_ERROR": 500,
    "BAD_REQUEST": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "ENDPOINT_NOT_FOUND": 404,
    "MALFORMED_REQUEST": 400,
    "INVALID_STATE": 500,
    "PERMISSION_DENIED": 403,
    "FEATURE_DISABLED": 403,
    "CUSTOMER_UNAUTHORIZED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "NOT_IMPLEMENTED": 501,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
}


class MlflowException(XPError):
    """MLflow's exception, so code written for MLflow catches and inspects it unchanged:
    ``.message``, ``.error_code`` (the code's name, e.g. ``"INVALID_PARAMETER_VALUE"``),
    ``get_http_status_code()``. Raised by ``xp.mlflow`` with MLflow's messages."""

    def __init__(self, message: object, error_code: int | str = "INTERNAL_ERROR", **kw: object):
        if isinstance(error_code, int):
            names = {v: k for k, v in MLFLOW_ERROR_CODES.items()}
            error_code = names.get(error_code, "INTERNAL_ERROR")
        self.message = str(message)
        self.error_code = error_code
        self.json_kwargs = kw
        super().__init__(self.message)

    def get_http_status_code(self) -> int:
        return _MLFLOW_HTTP_STATUS.get(self.error_code, 500)

    def serialize_as_json(self) -> str:
        import json

        return json.dumps({"error_code": self.error_code, "message": self.message})

    @classmethod
    def invalid_parameter_value(cls, message: object, **kw: object) -> MlflowException:
        return cls(message, "INVALID_PARAMETER_VALUE", **kw)
