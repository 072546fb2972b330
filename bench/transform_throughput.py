"""Batch transform records/s for a 100,000-line CSV: through the emulator vs posting directly to a container.

Both sides use the same serving image (tests/images/serving, which sums each CSV row) and the same
request batches (Line split, MultiRecord packed under MaxPayloadInMB by the emulator's own packer),
in this same run. The emulator's figure is its transform phase as its data log reports it: reading
the object from S3, splitting, packing, invoking, assembling and writing the `.out` object; the
end-to-end figure (CreateTransformJob -> Completed, including container start) is printed too.
Needs the Docker engine and base image (scripts/setup). Prints one JSON document (target >= 80 %).

    python -m bench.transform_throughput [--lines 100000] [--runs 5] [--payload-mb 1] [--strategy MultiRecord]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import re
import statistics
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from bench.common import ROLE
from sagemaker_emulator.jobs.transform import records as rec
from sagemaker_emulator.testing import REPO_ROOT, EmulatorServer, build_test_image

BUCKET = "bench-transform-bucket"
ENV: dict[str, str] = {}
_COMPLETED = re.compile(r"Completed: (\d+) record\(s\) in (\d+) request\(s\), ([\d.]+) s")


def make_csv(lines: int) -> bytes:
    rng = random.Random(1)
    return "".join(",".join(str(rng.randint(0, 999)) for _ in range(10)) + "\n" for _ in range(lines)).encode()


def direct_once(image: str, data: bytes, strategy: str, payload_mb: int, concurrency: int) -> float:
    """records/s posting the same batches straight to the container (keep-alive, `concurrency` in flight)."""
    container = subprocess.run(["docker", "run", "-d", "-p", "127.0.0.1::8080", *sum((["-e", f"{k}={v}"]
                                for k, v in ENV.items()), []), image, "serve"],
                               check=True, capture_output=True, text=True).stdout.strip()
    try:
        port = int(subprocess.run(["docker", "port", container, "8080/tcp"], check=True, capture_output=True,
                                  text=True).stdout.split(":")[-1])
        deadline = time.time() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        local = threading.local()

        def post(body: bytes) -> bytes:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            local.conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            reply = local.conn.getresponse()
            return reply.read()

        started = time.perf_counter()
        out = io.BytesIO()
        window: deque = deque()
        count = 0
        with ThreadPoolExecutor(concurrency) as pool:
            batches = rec.pack(rec.split(io.BytesIO(data), rec.LINE, strategy), strategy,
                               rec.max_payload_bytes(payload_mb))
            for batch in batches:
                window.append(pool.submit(post, batch.body))
                count += batch.count
                while len(window) >= concurrency:
                    out.write(window.popleft().result() + b"\n")
            while window:
                out.write(window.popleft().result() + b"\n")
        elapsed = time.perf_counter() - started
        return count / elapsed
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def emulator_once(server: EmulatorServer, model: str, index: int, lines: int, strategy: str, payload_mb: int,
                  concurrency: int) -> tuple[float, float]:
    """(records/s of the transform phase, records/s end to end)."""
    sm, logs = server.client("sagemaker"), server.client("logs")
    name = f"bench-tx-{index}-{int(time.time() * 1000)}"
    started = time.perf_counter()
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, BatchStrategy=strategy, MaxPayloadInMB=payload_mb,
        MaxConcurrentTransforms=concurrency,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out-{index}/", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    while True:
        job = sm.describe_transform_job(TransformJobName=name)
        if job["TransformJobStatus"] != "InProgress":
            break
        time.sleep(0.02)
    end_to_end = time.perf_counter() - started
    if job["TransformJobStatus"] != "Completed":
        raise RuntimeError(f"{name} ended {job['TransformJobStatus']}: {job.get('FailureReason')}")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    data_log = next(s["logStreamName"] for s in streams if s["logStreamName"].endswith("/data-log"))
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TransformJobs", logStreamName=data_log,
                                 startFromHead=True)["events"]
    match = next(m for e in events if (m := _COMPLETED.search(e["message"])))
    records, phase = int(match.group(1)), float(match.group(3))
    if records != lines:
        raise RuntimeError(f"{name} transformed {records} records, not {lines}")
    return records / phase, records / end_to_end


def run(lines: int, runs: int, strategy: str, payload_mb: int, concurrency: int) -> dict:
    subprocess.run([str(REPO_ROOT / "scripts" / "setup")], check=True)
    image = build_test_image("sm-test-serving", REPO_ROOT / "tests" / "images" / "serving")
    data = make_csv(lines)
    with EmulatorServer() as server:
        server.client("s3").create_bucket(Bucket=BUCKET)
        server.client("s3").put_object(Bucket=BUCKET, Key="in/data.csv", Body=data)
        model = "bench-tx-model"
        server.client("sagemaker").create_model(ModelName=model, ExecutionRoleArn=ROLE,
                                                PrimaryContainer={"Image": image, "Environment": ENV})
        direct_once(image, data, strategy, payload_mb, concurrency)  # warm up both sides
        emulator_once(server, model, -1, lines, strategy, payload_mb, concurrency)
        ours, ends, direct = [], [], []
        for i in range(runs):  # interleaved, so drift affects both alike
            direct.append(direct_once(image, data, strategy, payload_mb, concurrency))
            phase, end_to_end = emulator_once(server, model, i, lines, strategy, payload_mb, concurrency)
            ours.append(phase)
            ends.append(end_to_end)
    med_ours, med_direct = statistics.median(ours), statistics.median(direct)
    batches = sum(1 for _ in rec.pack(rec.split(io.BytesIO(data), rec.LINE, strategy), strategy,
                                      rec.max_payload_bytes(payload_mb)))
    return {"benchmark": "transform_records_per_second", "lines": lines, "bytes": len(data), "runs": runs,
            "batch_strategy": strategy, "max_payload_mb": payload_mb, "max_concurrent_transforms": concurrency,
            "requests_per_run": batches,
            "emulator_records_per_s": {"median": round(med_ours), "all": [round(x) for x in ours]},
            "emulator_end_to_end_records_per_s": {"median": round(statistics.median(ends)),
                                                  "all": [round(x) for x in ends]},
            "direct_records_per_s": {"median": round(med_direct), "all": [round(x) for x in direct]},
            "ratio": round(med_ours / med_direct, 3), "target_ratio": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strategy", default=rec.MULTI_RECORD, choices=[rec.MULTI_RECORD, rec.SINGLE_RECORD])
    parser.add_argument("--payload-mb", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.lines, args.runs, args.strategy, args.payload_mb, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
