"""InvokeEndpoint through the emulator against the serving container's /invocations directly.

Same client (http.client on loopback, one connection kept alive where the server allows it),
same payload, same run: p50/p99 latency and requests/s for both, and the overhead the emulator
adds (targets: p50 overhead < 1 ms, throughput >= 70 % of direct). Also CreateEndpoint ->
InService for a container that is ready at once (target < 2 s; SDK local mode: ~35 s here).
Needs the Docker engine and base image (scripts/setup). Prints one JSON document.

Client, emulator and container share the machine (2 cores here), so one short run swings by
+-0.05 in throughput ratio with whatever else the machine does; the defaults alternate five runs
of 4,000 requests each way and report medians.

    python -m bench.invoke_latency [--requests 4000] [--threads 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from bench.common import ROLE
from sagemaker_emulator.testing import EmulatorServer, build_test_image

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"instances": [[1.0, 2.0, 3.0]]}'


class NoDelayConnection(http.client.HTTPConnection):
    """TCP_NODELAY, as botocore's urllib3 sets it: http.client sends headers and body separately."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def run_client(host: str, port: int, path: str, count: int) -> list[float]:
    """`count` POSTs; returns each one's latency in seconds."""
    conn = NoDelayConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", path, body=BODY, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        latencies.append(time.perf_counter() - started)
    conn.close()
    return latencies


def measure(host: str, port: int, path: str, requests: int, threads: int) -> dict[str, float]:
    run_client(host, port, path, 50)  # warm up
    results: list[list[float]] = [[] for _ in range(threads)]

    def worker(index: int) -> None:
        results[index] = run_client(host, port, path, requests // threads)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    single = sorted(run_client(host, port, path, requests // 2))  # latency unloaded, one client
    everything = [x for r in results for x in r]
    return {"p50_ms": round(statistics.median(single) * 1000, 3),
            "p99_ms": round(single[int(len(single) * 0.99) - 1] * 1000, 3),
            "requests_per_s": round(len(everything) / elapsed, 1), "requests": len(everything) + len(single)}


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs."""
    return {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]} | {"runs": len(results)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True, capture_output=True)
    image = build_test_image("sm-test-serving", ROOT / "tests" / "images" / "serving")
    with EmulatorServer() as server:
        sm = server.client("sagemaker")
        sm.create_model(ModelName="bench", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
        sm.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "bench", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        deploys = []
        for index in range(3):
            name = f"bench-{index}"
            started = time.perf_counter()
            sm.create_endpoint(EndpointName=name, EndpointConfigName="bench")
            while sm.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
                time.sleep(0.02)
            deploys.append(time.perf_counter() - started)
        for index in (1, 2):
            sm.delete_endpoint(EndpointName=f"bench-{index}")
        arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/bench-0"
        container = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=sagemaker-emulator.resource={arn}"],
            capture_output=True, text=True).stdout.split()[0]
        mapping = subprocess.run(["docker", "port", container, "8080/tcp"], capture_output=True, text=True).stdout
        direct_port = int(mapping.split()[0].rsplit(":", 1)[1])
        url = urlparse(server.endpoint_url)
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "emulated": []}
        for _ in range(args.runs):  # alternate, so both sides see the same machine load
            runs["direct"].append(measure("127.0.0.1", direct_port, "/invocations", args.requests, args.threads))
            runs["emulated"].append(measure(url.hostname, url.port, "/endpoints/bench-0/invocations",
                                            args.requests, args.threads))
    direct, emulated = median_of(runs["direct"]), median_of(runs["emulated"])
    print(json.dumps({
        "benchmark": "invoke_endpoint",
        "direct_container": direct,
        "through_emulator": emulated,
        "p50_overhead_ms": round(emulated["p50_ms"] - direct["p50_ms"], 3),
        "throughput_ratio": round(emulated["requests_per_s"] / direct["requests_per_s"], 3),
        "targets": {"p50_overhead_ms": 1.0, "throughput_ratio": 0.7},
        "create_endpoint_to_in_service_s": {"runs": [round(x, 3) for x in deploys],
                                            "median": round(statistics.median(deploys), 3), "target": 2.0,
                                            "sdk_local_mode_reference": 35.0},
    }, indent=2))


if __name__ == "__main__":
    main()
