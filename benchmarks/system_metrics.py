"""S1: the system-metrics sampler's cost: CPU time of one sample (CPU, memory, disk and
network counters, process memory; no GPU here), and what that is at the default 10 s interval.
MLflow's own monitors (psutil) sampling the same things are the peer."""

from __future__ import annotations

import time

from benchmarks.harness import Context, Metric, Workload, standalone

INTERVAL = 10.0


def _per_sample(sample: object, n: int) -> dict[str, float]:
    fn = sample  # a callable taking no argument
    fn()  # type: ignore[operator]  # prime: first CPU percentages, imports
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    cpu = (time.thread_time() - c0) / n
    wall = (time.perf_counter() - t0) / n
    return {"cpu_per_sample": cpu, "wall_per_sample": wall, "core_share": cpu / INTERVAL}


def xp_side(ctx: Context) -> dict[str, float]:
    from xp.tracking.system_metrics import Sampler

    logged: list[dict[str, float]] = []
    sampler = Sampler(lambda values, step: logged.append(values), interval=3600)
    sampler._start = sampler._last = sampler._counters()
    return _per_sample(sampler._take, ctx.size(2000, 200))


def mlflow_side(ctx: Context) -> dict[str, float]:
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

    monitors = [CPUMonitor(), DiskMonitor(), NetworkMonitor()]

    def sample() -> None:
        for monitor in monitors:
            monitor.collect_metrics()
            monitor.aggregate_metrics()
            monitor.clear_metrics()

    return _per_sample(sample, ctx.size(2000, 200))


WORKLOAD = Workload(
    key="S1",
    title="system metrics: the cost of one sample",
    metrics=(
        Metric("cpu_per_sample", "one sample, CPU time", "us"),
        Metric("core_share", "share of a core at one sample / 10 s", "%", 0.01),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=80,
    notes=("xp reads /proc on Linux; MLflow's CPU, disk and network monitors use psutil",),
    quick_notes=("quick: 200 samples",),
)

if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side, "mlflow": mlflow_side})
