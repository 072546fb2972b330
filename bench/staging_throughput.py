"""File-mode staging of a 1 GiB training channel (S3 -> the job's /opt/ml/input/data/<channel>) vs `cp`.

Target: staging takes at most 2x the time of `cp -r` of the same files to the same disk, measured
in the same run (interleaved: cp, then staging, `--runs` times; medians). The channel is `--files`
objects of `--size-mib / --files` each, uploaded to the emulator's own S3; staging runs the code a
training job runs (`JobData.stage_channel`, File mode: ListObjectsV2, then one GetObject per key
streamed to a file), inside the server's process (an in-process server with a fake container
runtime: no container is needed to stage), so it competes with the server's own threads as it does
in a job. The load average before each timed step is reported: the machine is shared.

    python -m bench.staging_throughput [--size-mib 1024] [--files 4] [--runs 3]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Timings, make_file, options
from sagemaker_emulator.jobs.data import JobData
from sagemaker_emulator.runtime.fake import FakeRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer


def time_cp_tree(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    return elapsed


def main() -> None:
    args = options(__doc__, size_mib=1024, files=4, runs=3)
    size = (args.size_mib << 20) // args.files
    with tempfile.TemporaryDirectory(prefix="bench-staging-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        source = work / "channel"
        source.mkdir()
        for index in range(args.files):
            make_file(source / f"part-{index:03d}.bin", size)
        timings = Timings()
        with InProcessServer(FakeRuntime(), data_dir=work / "data") as server:
            s3 = server.client("s3")
            s3.create_bucket(Bucket="bench")
            for path in sorted(source.iterdir()):
                s3.upload_file(str(path), "bench", f"train/{path.name}")
            channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bench/train", "S3DataDistributionType": "FullyReplicated"}}}
            job_data = JobData(server.services, server.region)
            for run in range(args.runs):
                timings.time("cp", lambda: time_cp_tree(source, work / "copy"))
                target = work / f"job-{run}" / "input" / "data"

                def stage(target: Path = target) -> float:
                    started = time.perf_counter()
                    job_data.stage_channel(channel, "File", target, 0, 1, threading.Event())
                    return time.perf_counter() - started

                timings.time("staging", stage)
                staged = sorted((target / "train").iterdir())
                assert [p.name for p in staged] == sorted(p.name for p in source.iterdir())
                assert all(p.stat().st_size == size for p in staged)
                if run == 0:
                    assert all(subprocess.run(["cmp", str(p), str(source / p.name)]).returncode == 0 for p in staged)
                shutil.rmtree(target.parent.parent)
    cp, staging = timings.median("cp"), timings.median("staging")
    mb = size * args.files / 1e6
    result = {"benchmark": "staging_throughput", "channel_bytes": size * args.files, "files": args.files,
              "runs": args.runs, "cp_seconds": round(cp, 3), "staging_seconds": round(staging, 3),
              "cp_MBps": round(mb / cp, 1), "staging_MBps": round(mb / staging, 1),
              "staging_time_vs_cp": round(staging / cp, 3), **timings.report(),
              "target": {"staging_time_vs_cp": "<= 2"}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
