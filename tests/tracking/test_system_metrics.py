"""System metrics: the sampler's series exist and are plausible, the switches work, a machine
without NVML records no GPU series and no error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import xp
from tests.helpers import invoke, journal_points, user_error, wait_for
from xp.tracking.system_metrics import ProcSource, Sampler

HOST_SERIES = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/disk_read_megabytes",
    "system/disk_write_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
    "system/process_rss_megabytes",
}
linux = pytest.mark.skipif(not ProcSource.available(), reason="reads Linux's /proc")


def _wait_samples(run: xp.ActiveRun, n: int) -> None:
    journal = Path(run.repo.xp_dir) / "journal" / f"{run.id}.journal"
    wait_for(
        lambda: journal_points(journal, "system/system_memory_usage_megabytes") >= n,
        f"{n} system samples in the journal",
    )


def _mem_total_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise AssertionError("no MemTotal")


@linux
def test_series_exist_and_are_plausible(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_SYSTEM_METRICS_INTERVAL", "0.1")
    with xp.start_run(system_metrics=True) as run:
        _wait_samples(run, 3)
    got = xp.get_run(run.id)
    assert set(got.metrics) >= HOST_SERIES
    assert not [k for k in got.metrics if k.startswith("system/gpu_")]  # no NVML here
    steps = [s for s, _v, _t in got.record.series["system/cpu_utilization_percentage"]]
    assert steps == list(range(len(steps)))
    assert len(steps) >= 3
    total = _mem_total_mb()
    for _s, cpu, _t in got.record.series["system/cpu_utilization_percentage"]:
        assert 0.0 <= cpu <= 100.0
    assert 0 < got.metrics["system/system_memory_usage_megabytes"] < total
    assert 0 < got.metrics["system/system_memory_usage_percentage"] < 100
    assert 0 <= got.metrics["system/disk_usage_percentage"] <= 100
    assert got.metrics["system/network_receive_megabytes"] >= 0
    rss = got.metrics["system/process_rss_megabytes"]
    assert 1 < rss < total
    system = got.meta["system"]
    assert system["cpu_count"] == os.cpu_count()
    assert abs(system["memory_megabytes"] - total) < 1
    assert "gpus" not in system
    assert "warnings" not in got.meta


@linux
def test_config_switch_and_interval(repo: Path) -> None:
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text(
        "system_metrics: true\nsystem_metrics_interval: 0.1\n"
    )
    with xp.start_run() as run:
        _wait_samples(run, 2)
    assert "system/cpu_utilization_percentage" in xp.get_run(run.id).metrics
    with xp.start_run(system_metrics=False) as off:  # the argument wins over the config
        pass
    assert not xp.get_run(off.id).metrics


def test_off_by_default_and_env_switch(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with xp.start_run() as run:
        xp.log_metric("x", 1)
    assert set(xp.get_run(run.id).metrics) == {"x"}
    assert "system" not in xp.get_run(run.id).meta
    monkeypatch.setenv("XP_SYSTEM_METRICS", "1")
    monkeypatch.setenv("XP_SYSTEM_METRICS_INTERVAL", "0.1")
    with xp.start_run() as run2:
        _wait_samples(run2, 1)
    assert "system/system_memory_usage_megabytes" in xp.get_run(run2.id).metrics


def test_a_bad_setting_is_one_line(repo: Path) -> None:
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text("system_metrics: sometimes\n")
    assert "system_metrics" in user_error(invoke("commit"))
    (repo / ".xp" / "config.yaml").write_text("system_metrics_interval: 0\n")
    assert ">= 0.1" in user_error(invoke("commit"))


@linux
def test_sampler_takes_one_last_sample_when_stopped(repo: Path) -> None:
    got: list[tuple[dict[str, float], int]] = []
    sampler = Sampler(lambda values, step: got.append((values, step)), interval=3600)
    sampler.start()
    sampler._last_time -= 2  # as if the last sample were two seconds old
    sampler.stop()
    assert len(got) == 1
    assert got[0][1] == 0
    assert "system/system_memory_usage_megabytes" in got[0][0]
    assert sampler.cpu_seconds > 0


@linux
def test_xp_run_samples_once_for_the_run_and_its_script(repo: Path) -> None:
    """Under ``xp run`` the run owner samples; the script's attached part does not."""
    (repo / ".xp").mkdir()
    (repo / ".xp" / "config.yaml").write_text(
        "system_metrics: true\nsystem_metrics_interval: 0.2\n"
    )
    (repo / "job.py").write_text(
        "import time, xp\nxp.start_run()\nxp.log_metric('m', 1)\ntime.sleep(1.5)\n"
    )
    result = invoke("run", "--", sys.executable, "job.py")
    assert result.exit_code == 0, result.output
    run = xp.get_run(xp.list_runs()[0].id)
    assert run.metrics["m"] == 1
    steps = [s for s, _v, _t in run.record.series["system/system_memory_usage_megabytes"]]
    assert steps == sorted(set(steps))  # one sampler: no step logged twice


@pytest.mark.framework
def test_no_gpu_with_nvidia_ml_py_installed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nvidia-ml-py installed but no NVIDIA library (as here): no GPU series, no error."""
    pynvml = pytest.importorskip("pynvml")
    with pytest.raises(pynvml.NVMLError):
        pynvml.nvmlInit()
    monkeypatch.setenv("XP_SYSTEM_METRICS_INTERVAL", "0.1")
    with xp.start_run(system_metrics=True) as run:
        _wait_samples(run, 1)
    got = xp.get_run(run.id)
    assert not [k for k in got.metrics if "gpu" in k]
    assert "gpus" not in got.meta["system"]
    assert "warnings" not in got.meta


@pytest.mark.framework
@linux
def test_proc_readings_agree_with_psutil() -> None:
    psutil = pytest.importorskip("psutil")
    from xp.tracking.system_metrics import PsutilSource

    proc, ps = ProcSource("/"), PsutilSource("/")
    assert proc.memory()[0] == ps.memory()[0]
    assert abs(proc.memory()[1] - ps.memory()[1]) < 0.05 * proc.memory()[0]
    assert abs(proc.process_rss() - psutil.Process().memory_info().rss) < 16 * 2**20
    rx, _tx = proc.net_io()
    assert rx >= 0


class _FakeNvml:
    """Stands in for nvidia-ml-py on a machine with two NVIDIA GPUs, which cannot run here
    (no GPU, no driver): the NVML calls and units the sampler relies on, nothing else."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetName(self, h: int) -> str:
        return f"NVIDIA A{h}"

    def nvmlDeviceGetMemoryInfo(self, h: int) -> object:
        from types import SimpleNamespace

        return SimpleNamespace(used=4e9, total=16e9)

    def nvmlDeviceGetUtilizationRates(self, h: int) -> object:
        from types import SimpleNamespace

        return SimpleNamespace(gpu=75, memory=30)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return 60 + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise self.NVMLError("not supported")  # some boards do not report power
        return 150_000  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return 300_000


def test_gpu_series_and_description_from_nvml(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)  # type: ignore[arg-type]
    monkeypatch.setenv("XP_SYSTEM_METRICS_INTERVAL", "0.1")
    with xp.start_run(system_metrics=True) as run:
        _wait_samples(run, 1)
    got = xp.get_run(run.id)
    assert got.meta["system"]["gpus"] == [
        {"name": "NVIDIA A0", "memory_megabytes": 16000.0},
        {"name": "NVIDIA A1", "memory_megabytes": 16000.0},
    ]
    assert (got.meta["system"]["gpu_driver"], got.meta["system"]["cuda"]) == ("550.54.15", "12.4")
    m = got.metrics
    assert m["system/gpu_0_utilization_percentage"] == 75
    assert m["system/gpu_0_memory_usage_megabytes"] == 4000
    assert m["system/gpu_0_memory_usage_percentage"] == 25
    assert m["system/gpu_1_temperature_celsius"] == 61
    assert (m["system/gpu_0_power_usage_watts"], m["system/gpu_0_power_usage_percentage"]) == (
        150,
        50,
    )
    assert "system/gpu_1_power_usage_watts" not in m  # no reading, no series, no error
    assert fake.shut  # NVML is shut down with the run


@pytest.mark.framework
def test_the_psutil_source_off_linux(repo: Path) -> None:
    pytest.importorskip("psutil")
    from xp.tracking.system_metrics import PsutilSource

    got: list[dict[str, float]] = []
    sampler = Sampler(lambda values, step: got.append(values), interval=3600)
    sampler.source = PsutilSource(str(repo))
    sampler._start = sampler._last = sampler._counters()
    sampler._take()
    assert {
        "system/system_memory_usage_megabytes",
        "system/disk_usage_percentage",
        "system/network_receive_megabytes",
        "system/disk_read_megabytes",
        "system/process_rss_megabytes",
    } <= set(got[0])
    assert sampler.info()["cpu_count"] == os.cpu_count()
