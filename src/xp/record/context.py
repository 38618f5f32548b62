"""What xp records about a run without being asked: who, where, with what software."""

from __future__ import annotations

import getpass
import os
import re
import sys
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """name==version of every installed distribution, once per process.

    Read from the ``*.dist-info`` / ``*.egg-info`` folder names on sys.path: 1-2 ms, where
    importlib.metadata parses every METADATA file (~180 ms for 120 packages).
    """
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for fname in names:
            stem, dot, suffix = fname.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or not dot:
                continue
            name, _, version = stem.partition("-")
            version = version.split("-")[0]
            key = name.lower().replace("_", "-").replace(".", "-")
            if key and version and key not in seen:
                seen[key] = f"{key}=={version}"
    return tuple(sorted(seen.values()))


def _platform() -> str:
    """platform.platform()'s string without its ``uname -p`` subprocess (2-5 ms a process),
    nor, on glibc, the import of ``platform`` itself (2-8 ms of every ``xp commit``)."""
    if not sys.platform.startswith("linux"):
        import platform

        return platform.platform()
    u = os.uname()
    libc, version = _libc()
    return f"{u.sysname}-{u.release}-{u.machine}" + (f"-with-{libc}{version}" if libc else "")


def _libc() -> tuple[str, str]:
    """``platform.libc_ver()``: its first answer (glibc's own), else platform's scan."""
    try:
        parts = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        parts = None
    found = parts.split(maxsplit=1) if parts else []
    if len(found) == 2:
        return found[0], found[1]
    import platform

    return platform.libc_ver()


def _python_version() -> str:
    """``platform.python_version()``: the first word of ``sys.version`` (``3.11.7``,
    ``3.13.0rc1``), ``.0`` added to a bare major.minor; platform's own answer otherwise."""
    word = sys.version.split(maxsplit=1)[0] if sys.version else ""
    if re.fullmatch(r"[\w.+]+", word):
        return word + ".0" if word.count(".") == 1 else word
    import platform

    return platform.python_version()


@lru_cache(maxsize=1)
def static_context() -> dict[str, Any]:
    user, host = host_user()
    return {
        "user": user,
        "host": host,
        "python": _python_version(),
        "platform": _platform(),
    }


def engine_context(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The engine that scheduled this process (per run, not cached: one Dask or Ray worker
    process runs many tasks), its job and its task (meta.yaml's ``engine``,
    ``job_id``, ``task_id``): which worker ran which point of a distributed sweep, to find its
    logs in the engine's own tools. ``host`` already says where.

    Slurm from its ``SLURM_*`` variables (an array task: the array's job id and the task
    index); Ray and Dask from their runtime, only when the process has imported them (xp
    never imports them); any other engine by setting ``XP_ENGINE``, ``XP_JOB_ID``,
    ``XP_TASK_ID``, which win.
    """
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    if env.get("SLURM_JOB_ID"):
        found["engine"] = "slurm"
        found["job_id"] = env.get("SLURM_ARRAY_JOB_ID") or env["SLURM_JOB_ID"]
        task = env.get("SLURM_ARRAY_TASK_ID")
        if task is None and env.get("SLURM_NTASKS", "1") != "1":
            task = env.get("SLURM_PROCID")  # one of the job's srun tasks
        if task is not None:
            found["task_id"] = task
    else:
        found.update(_ray() or _dask())
    for key, var in (("engine", "XP_ENGINE"), ("job_id", "XP_JOB_ID"), ("task_id", "XP_TASK_ID")):
        if env.get(var):
            found[key] = env[var]
    return {k: v[:200] for k, v in found.items()}


def _ray() -> dict[str, str]:
    ray = sys.modules.get("ray")
    try:
        if ray is None or not ray.is_initialized():
            return {}
        ctx = ray.get_runtime_context()
        found = {"engine": "ray", "job_id": str(ctx.get_job_id())}
        task = ctx.get_task_id()  # None in the driver
        if task:
            found["task_id"] = str(task)
        return found
    except Exception:  # an engine's API that changed must never stop a run
        return {}


def _dask() -> dict[str, str]:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return {}
    try:
        worker = distributed.get_worker()  # ValueError outside a task
        found = {"engine": "dask", "job_id": str(worker.scheduler.address)}
        task = worker.get_current_task()
        if task is not None:
            found["task_id"] = str(task)
        return found
    except Exception:  # not in a worker, or an API that changed
        return {}


def command_line() -> list[str]:
    return [str(a) for a in sys.argv] if sys.argv and sys.argv != [""] else []


def host_user() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return user, os.uname().nodename  # what socket.gethostname() gives, without socket
