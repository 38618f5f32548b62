"""System metrics: a daemon thread samples CPU, memory, disk, network and NVIDIA GPUs.

Series go under ``system/`` with MLflow's names and units (MB = 10^6 bytes), so dashboards
built for MLflow's system metrics read the same. On Linux the numbers come straight from
``/proc`` (about 0.1 ms a sample, a third of what psutil costs); elsewhere from psutil when it
is installed. GPUs come from NVML (``pip install nvidia-ml-py``) when it loads; a machine
without it records no GPU series and says nothing. The thread only ever appends to the run's
memory, like any log call, so it never blocks the training loop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL = 10.0  # seconds, as MLflow
MIN_INTERVAL = 0.1
PREFIX = "system/"
MB = 1e6


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


class ProcSource:
    """Counters from Linux's /proc, /sys and statvfs; no dependency."""

    def __init__(self, disk_path: str) -> None:
        self.disk_path = disk_path
        self._page = os.sysconf("SC_PAGE_SIZE")
        try:
            self._disks = {
                d
                for d in os.listdir("/sys/block")
                if not d.startswith(("loop", "ram", "zram", "dm-", "md"))
            }
        except OSError:
            self._disks = set()

    @staticmethod
    def available() -> bool:
        return sys.platform.startswith("linux") and os.path.exists("/proc/stat")

    def cpu_times(self) -> tuple[int, int]:
        """(busy, total) jiffies since boot: idle = idle + iowait of the first 8 fields."""
        fields = [int(x) for x in _read("/proc/stat").split("\n", 1)[0].split()[1:9]]
        total = sum(fields)
        return total - fields[3] - fields[4], total

    def memory(self) -> tuple[float, float]:
        """(total, used) bytes; used = total - available, as psutil and MLflow count it."""
        values = {}
        for line in _read("/proc/meminfo").splitlines():
            name, _, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                values[name] = int(rest.split()[0]) * 1024
        total = values.get("MemTotal", 0)
        return total, total - values.get("MemAvailable", total)

    def disk_io(self) -> tuple[int, int]:
        """Bytes read and written since boot by whole disks (partitions would count twice)."""
        read = written = 0
        for line in _read("/proc/diskstats").splitlines():
            parts = line.split()
            if len(parts) > 9 and parts[2] in self._disks:
                read += int(parts[5]) * 512
                written += int(parts[9]) * 512
        return read, written

    def net_io(self) -> tuple[int, int]:
        """Bytes received and sent since boot on every interface but loopback."""
        rx = tx = 0
        for line in _read("/proc/net/dev").splitlines()[2:]:
            name, _, data = line.partition(":")
            if name.strip() == "lo":
                continue
            values = data.split()
            rx += int(values[0])
            tx += int(values[8])
        return rx, tx

    def process_rss(self) -> int:
        return int(_read("/proc/self/statm").split()[1]) * self._page

    def cpu_model(self) -> str | None:
        try:
            for line in _read("/proc/cpuinfo").splitlines():
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
        except OSError:
            pass
        return None


class PsutilSource(ProcSource):
    """The same counters through psutil, for macOS and Windows."""

    def __init__(self, disk_path: str) -> None:
        import psutil

        self.disk_path = disk_path
        self._ps = psutil
        self._proc = psutil.Process()

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("psutil") is not None

    def cpu_times(self) -> tuple[int, int]:
        t = self._ps.cpu_times()
        total = sum(t)
        idle = t.idle + getattr(t, "iowait", 0.0)
        return int((total - idle) * 1000), int(total * 1000)

    def memory(self) -> tuple[float, float]:
        vm = self._ps.virtual_memory()
        return float(vm.total), float(vm.total - vm.available)

    def disk_io(self) -> tuple[int, int]:
        io = self._ps.disk_io_counters()
        return (io.read_bytes, io.write_bytes) if io else (0, 0)

    def net_io(self) -> tuple[int, int]:
        io = self._ps.net_io_counters()
        return (io.bytes_recv, io.bytes_sent) if io else (0, 0)

    def process_rss(self) -> int:
        return int(self._proc.memory_info().rss)

    def cpu_model(self) -> str | None:
        import platform

        return platform.processor() or None


def host_source(disk_path: str) -> ProcSource | None:
    if ProcSource.available():
        return ProcSource(disk_path)
    if PsutilSource.available():
        return PsutilSource(disk_path)
    return None


class Gpus:
    """NVIDIA GPUs through NVML, or none: any failure to load means no GPU series."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
            self.nvml = pynvml
        except Exception:  # ImportError, NVMLError (no library, no driver), anything odd
            self.handles = []

    def info(self) -> dict[str, Any]:
        if self.nvml is None:
            return {}
        nv = self.nvml
        out: dict[str, Any] = {"gpus": []}
        with contextlib.suppress(Exception):
            out["gpu_driver"] = _text(nv.nvmlSystemGetDriverVersion())
        with contextlib.suppress(Exception):
            cuda = int(nv.nvmlSystemGetCudaDriverVersion())
            out["cuda"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        for h in self.handles:
            gpu: dict[str, Any] = {}
            with contextlib.suppress(Exception):
                gpu["name"] = _text(nv.nvmlDeviceGetName(h))
            with contextlib.suppress(Exception):
                gpu["memory_megabytes"] = round(nv.nvmlDeviceGetMemoryInfo(h).total / MB, 1)
            out["gpus"].append(gpu)
        return out

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        nv = self.nvml
        for i, h in enumerate(self.handles):
            p = f"gpu_{i}_"
            with contextlib.suppress(Exception):
                util = nv.nvmlDeviceGetUtilizationRates(h)
                out[p + "utilization_percentage"] = float(util.gpu)
            with contextlib.suppress(Exception):
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                out[p + "memory_usage_megabytes"] = mem.used / MB
                out[p + "memory_usage_percentage"] = 100.0 * mem.used / mem.total
            with contextlib.suppress(Exception):
                temp = nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
                out[p + "temperature_celsius"] = float(temp)
            with contextlib.suppress(Exception):
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0  # mW
                out[p + "power_usage_watts"] = power
                limit = nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0
                out[p + "power_usage_percentage"] = 100.0 * power / limit
        return out

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def system_info(source: ProcSource | None, gpus: Gpus) -> dict[str, Any]:
    """What the machine is, recorded once per run in meta.yaml's ``system``."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count()}
    if source is not None:
        with contextlib.suppress(OSError, ValueError):
            model = source.cpu_model()
            if model:
                info["cpu_model"] = model
        with contextlib.suppress(OSError, ValueError):
            info["memory_megabytes"] = round(source.memory()[0] / MB, 1)
    info.update(gpus.info())
    return info


class Sampler:
    """Samples every ``interval`` seconds into ``log(values, step)`` until stopped."""

    def __init__(
        self,
        log: Callable[[dict[str, float], int], None],
        *,
        interval: float = DEFAULT_INTERVAL,
        disk_path: str | os.PathLike[str] = "/",
    ) -> None:
        self.log = log
        self.interval = max(MIN_INTERVAL, float(interval))
        self.source = host_source(os.fspath(disk_path))
        self.gpus = Gpus()
        self.step = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one sample at a time: the thread's or stop()'s last one
        self._last: dict[str, Any] = {}
        self._start: dict[str, Any] = {}
        self._last_time = 0.0
        self.cpu_seconds = 0.0  # what the samples cost, for the benchmark

    def info(self) -> dict[str, Any]:
        return system_info(self.source, self.gpus)

    def start(self) -> Sampler:
        self._start = self._counters()
        self._last = dict(self._start)
        self._last_time = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="xp-system-metrics", daemon=True)
        self._thread.start()
        return self

    def _counters(self) -> dict[str, Any]:
        src = self.source
        if src is None:
            return {}
        out: dict[str, Any] = {}
        for name, read in (
            ("cpu", src.cpu_times),
            ("disk_io", src.disk_io),
            ("net_io", src.net_io),
        ):
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[name] = read()
        return out

    def sample(self) -> dict[str, float]:
        """One sample's values (CPU % over the time since the previous sample)."""
        values: dict[str, float] = {}
        src = self.source
        now = self._counters()
        if src is not None:
            if "cpu" in now and "cpu" in self._last:
                busy = now["cpu"][0] - self._last["cpu"][0]
                total = now["cpu"][1] - self._last["cpu"][1]
                if total > 0:
                    values["cpu_utilization_percentage"] = 100.0 * busy / total
            with contextlib.suppress(OSError, ValueError):
                mem_total, used = src.memory()
                values["system_memory_usage_megabytes"] = used / MB
                if mem_total:
                    values["system_memory_usage_percentage"] = 100.0 * used / mem_total
            with contextlib.suppress(OSError):
                st = os.statvfs(src.disk_path)
                size, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
                used_disk = size - st.f_bfree * st.f_frsize
                values["disk_usage_megabytes"] = used_disk / MB
                values["disk_available_megabytes"] = free / MB
                if used_disk + free:
                    values["disk_usage_percentage"] = 100.0 * used_disk / (used_disk + free)
            for key, names in (
                ("disk_io", ("disk_read_megabytes", "disk_write_megabytes")),
                ("net_io", ("network_receive_megabytes", "network_transmit_megabytes")),
            ):
                if key in now and key in self._start:
                    for i, name in enumerate(names):
                        values[name] = (now[key][i] - self._start[key][i]) / MB
            with contextlib.suppress(OSError, ValueError, IndexError):
                values["process_rss_megabytes"] = src.process_rss() / MB
        values.update(self.gpus.sample())
        self._last = now
        return values

    def _take(self) -> None:
        with self._lock:
            c0 = time.thread_time()
            values = self.sample()
            self._last_time = time.monotonic()
            if values:
                self.log({PREFIX + k: v for k, v in values.items()}, self.step)
                self.step += 1
            self.cpu_seconds += time.thread_time() - c0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._take()
            except Exception as exc:  # a sampler must never take the run down
                sys.stderr.write(f"xp: warning: system metrics stopped: {exc}\n")
                return

    def stop(self) -> None:
        """Stop the thread; a last sample if the previous one is over a second old, so short
        runs get a point too."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=max(5.0, self.interval))
        self._thread = None
        if time.monotonic() - self._last_time >= 1.0:
            with contextlib.suppress(Exception):
                self._take()
        self.gpus.close()


def interval_from(value: object, source: str) -> float:
    """A sampling interval in seconds from a config value or an environment variable."""
    from xp.errors import ConfigError

    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: expected seconds, e.g. 10, got {value!r}") from None
    if not seconds >= MIN_INTERVAL:
        raise ConfigError(f"{source}: the interval must be at least {MIN_INTERVAL} s")
    return seconds
