"""DescribeModel / ListModels requests per second with 1,000 models: the emulator vs moto's server.

Both servers run on loopback in this same run and get the same calls from the same client code,
so the ratio is meaningful on any machine. Prints one JSON document.

    python -m bench.api_throughput [--models 1000] [--seconds 5] [--threads 4] [--runs 3]
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable

from bench.common import ROLE, options, sagemaker_client
from sagemaker_emulator.testing import EmulatorServer


def _populate(url: str, count: int) -> None:
    sm = sagemaker_client(url, pool=32)
    for i in range(count):
        sm.create_model(ModelName=f"bench-model-{i:05d}", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "bench:latest"})


def _rate(url: str, call: Callable, seconds: float, threads: int) -> dict:
    """Requests/s over `seconds` with `threads` clients, plus per-request latency percentiles."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        sm = sagemaker_client(url, pool=32)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            call(sm)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "requests_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


def calls(models: int) -> dict[str, Callable]:
    """The timed calls; DescribeModel asks for the middle one of `models`."""
    return {"DescribeModel": lambda sm: sm.describe_model(ModelName=f"bench-model-{models // 2:05d}"),
            "ListModels": lambda sm: sm.list_models(MaxResults=100)}


def _median(results: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in results), 2) for key in results[0]} | {"runs": len(results)}


def run(models: int, seconds: float, threads: int, runs: int = 3) -> dict:
    from moto.server import ThreadedMotoServer

    results: dict = {"benchmark": "api_throughput", "models": models, "threads": threads, "seconds": seconds,
                     "operations": {}}
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        with EmulatorServer() as emulator:
            for url in (emulator.endpoint_url, moto_url):
                _populate(url, models)
            for name, call in calls(models).items():
                ours_runs, baseline_runs = [], []
                for _ in range(runs):  # alternate, so both see the same machine load
                    ours_runs.append(_rate(emulator.endpoint_url, call, seconds, threads))
                    baseline_runs.append(_rate(moto_url, call, seconds, threads))
                ours, baseline = _median(ours_runs), _median(baseline_runs)
                results["operations"][name] = {
                    "emulator": ours, "moto_server": baseline,
                    "ratio_vs_moto": round(ours["requests_per_second"] / baseline["requests_per_second"], 2)}
    finally:
        moto.stop()
    return results


def main() -> None:
    args = options(__doc__, models=1000, seconds=5.0, threads=4, runs=3)
    print(json.dumps(run(args.models, args.seconds, args.threads, args.runs), indent=2))


if __name__ == "__main__":
    main()
